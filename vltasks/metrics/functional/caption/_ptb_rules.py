"""Token rules of a pure-Python follower of Stanford PTBTokenizer 3.4.1 (the one inside pycocoevalcap).

Written from the documented behaviour of the JFlex lexer (its token classes) and checked against the jar
token by token (see docs/metrics_caption.md for the measured agreement). Each rule is a regex whose group
"t" is the token and whose remainder is trailing context: as in JFlex, the longest match (token plus
context) wins and ties go to the earlier rule. Literal words are caseless, character classes are not.
"""

from __future__ import annotations

import re
from collections.abc import Callable

L = r"[^\W\d_\u00B2\u00B3\u00B9\u00BC-\u00BE\u2070-\u218F]"  # a letter (not digit, _, super/subscripts)
LD = r"[^\W_\u00B2\u00B3\u00B9\u00BC-\u00BE\u2070-\u218F]"  # letter or digit
SPLET = r"&[aeiouAEIOU](?:acute|grave|uml);"
LETTER = rf"(?:{L}|{SPLET}|[\u00AD\u0300-\u036F])"
WORD = rf"{LETTER}(?:{LETTER}|\d)*(?:[.!?]{LETTER}(?:{LETTER}|\d)*)*"
APOS = r"(?:['\u0092\u2019]|&apos;)"
APOSETC = rf"(?:{APOS}|[\u0091\u2018\u201B])"
REDAUX = rf"{APOS}(?:[msdMSD]|(?i:re|ve|ll))"
SWORD = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
SREDAUX = rf"(?i:n){APOSETC}(?i:t)"
SPACE = r"[ \t\u00A0\u2000-\u200A\u3000]"
NL = r"(?:\r\n|[\r\n\u2028\u2029\u000B\u000C\u0085])"
SPACENL = rf"(?:{SPACE}|{NL})"
NUM_SEP = r"[.:,\u00AD\u066B\u066C]"
ACRO = r"(?:[A-Za-z](?:\.[A-Za-z])+|(?i:canada|sino|korean|eu|japan|non)-U\.S|U\.S\.-(?:U\.K|U\.S\.S\.R))"
ACRO1 = rf"(?:{ACRO}|[A-Za-z])"  # the sentence-final acronym rule also takes single letters ("I.")
HYPHEN = r"[-_\u058A\u2010\u2011]"
THING_PART = rf"(?:[dDoOlL]{APOSETC}{LD})?{LD}+"
THING = rf"{THING_PART}(?:{HYPHEN}{THING_PART})*"
HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:[A-Za-z0-9\u00AD]+|{ACRO}\.))+"
THINGA = r"[A-Z]+(?:(?:[+&]|&amp;)[A-Z]+)+"
THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
INSENTP = r"[,;:\u3001]"
DBLQUOT = r'(?:"|&quot;)'
_NAME = r"[A-Za-z][A-Za-z0-9_:.\-]*"
_ATTR = rf"{_NAME}(?:[ ]*=[ ]*(?:'[^'\r\n]*'|\"[^\"\r\n]*\"|{_NAME}))?"
SGML = rf"<(?:[!?][A-Za-z\-][^>\r\n]*|{_NAME}(?:[ ]+{_ATTR})*[ ]*/?|/{_NAME})[ ]*>"
_FOLLOWERS = (
    "About According Additionally After An A As At But Earlier He Her Here However If In It Last Many More "
    "Mr. Ms. Now Once One Other Our She Since So Some Such That The Then There These They This We When "
    "While What Yet You"
).split()
FOLLOWER = "(?:" + "|".join(w[0] + "(?i:" + re.escape(w[1:]) + ")" if len(w) > 1 else w for w in _FOLLOWERS) + ")"
SENTEND = rf"{SPACENL}(?:{SPACENL}|[A-Z]|{SGML})"

ABMONTH = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
ABDAYS = "Mon|Tue|Tues|Wed|Thu|Thurs|Fri"
ABSTATE = (
    "Ala|Ariz|Calif|Colo|Conn|Dak|Del|Fla|Ga|Ind|Kans?|Ky|La|Md|Mich|Minn|Mo|Mont|Neb|Nev|Okla|Pa|Penn"
    "|Tenn|Tex|Va|Vt|Wisc?|Wyo"
)
ABCOMP = "Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys"
ABNUM = "Nos?|Prop|Ph|tel|est|ext|sq|ft"
ABPTIT = r"Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq"
ABBREV1 = (
    rf"(?:(?i:{ABMONTH}|{ABDAYS}|{ABSTATE}|{ABCOMP}|{ABNUM}|{ABPTIT}|etc|al|seq)"
    r"|A(?i:rk)|I(?i:ll)|M(?i:ass)|M(?i:iss)|O(?i:re)|W(?i:ash))\."  # these need a capital
)
ABTITLE = (
    "Mr|Mrs|Ms|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Mt|Capt"
    "|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det"
)
ABBREV4 = rf"(?:{ACRO}|(?i:a\.k\.a|{ABTITLE}|vs|Alex|Wm|Jos|Cie|cf|TREAS|Invt|Elec|Natl|M[ft]g)|M(?i:iss)|[A-Za-z])"
PHONE = (
    r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0])[0-9]{3,4}"
    r"[\- \u00A0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}"
)
MISC = (
    "+%&~^|\\\\\u00A6\u00A7\u00A8\u00A9\u00AC\u00AE\u00AF\u00B0-\u00B3\u00B4-\u00BA\u00D7\u00F7\u0387"
    "\u2016\u2017\u2020-\u2023\u2030-\u2038\u203B\u203E-\u2042\u2044\u207A-\u207F\u208A-\u208E"
    "\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012\u30FB\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65"
)
QUOTECHARS = "`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F\u2039\u203A\u00AB\u00BB"


def quotes(tok: str, left: bool) -> str:
    """LaTeX-style quotes, as PTB3: ` `` for opening, ' '' for closing."""
    tok = re.sub(r"&apos;|'", "`" if left else "'", tok)
    tok = re.sub(r'"|&quot;', "``" if left else "''", tok)
    tok = re.sub("[\u0091\u2018\u201B\u2039]", "`", tok)
    tok = re.sub("[\u0092\u2019\u203A]", "'", tok)
    tok = re.sub("[\u0093\u201C\u00AB]", "``", tok)
    return re.sub("[\u0094\u201D\u00BB]", "''", tok)


def _currency(tok: str) -> str:
    return re.sub("[\u0080\u00A4\u20A0\u20AC]", "$", tok.replace("\u00A2", "cents").replace("\u00A3", "#"))


_FRACTIONS = {"\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_ENTITIES = {"&lt;": "<", "&gt;": ">"}

# (pattern, action): the action maps the token text to output tokens; "split:k" emits the first k chars
# and rescans the rest; "dup" emits the token and rescans its final period (abbreviation at sentence end).
Action = Callable[[str], str | None] | str
_KEEP: Action = lambda t: t  # noqa: E731
_NBSP: Action = lambda t: t.replace(" ", "\u00A0")  # noqa: E731
_AMP: Action = lambda t: re.sub("(?i)&amp;", "&", t)  # noqa: E731
_RIGHT: Action = lambda t: quotes(t, False)  # noqa: E731
_LEFT: Action = lambda t: quotes(t, True)  # noqa: E731
_SOFT: Action = lambda t: t.replace("\u00AD", "") or "-"  # noqa: E731
_DROP: Action = lambda t: None  # noqa: E731

RULES: list[tuple[str, Action]] = [
    (r"(?P<t>(?i:cannot|gimme|gonna|gotta|lemme|wanna))", "split:3"),
    (rf"(?P<t>{APOS}(?i:tis|twas))", "split:2"),
    (SGML, _NBSP),
    (r"&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", lambda t: "--"),
    (r"&amp;", _AMP),
    (r"&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", _KEEP),
    (rf"(?P<t>{WORD}){REDAUX}", _SOFT),
    (rf"(?P<t>{SWORD}){SREDAUX}", _SOFT),
    (WORD, _SOFT),
    (rf"{APOS}(?i:n){APOS}?", _KEEP),
    (rf"[lLdDjJ]{APOS}|(?i:dunkin|somethin|ol){APOS}|{APOS}(?i:em)|{APOS}[2-9]0(?i:s)|{APOS}(?i:till?)", _KEEP),
    (rf"[A-HJ-XZn]{APOSETC}{L}{{2}}{L}*", _KEEP),
    (rf"{L}+[aeiouyAEIOUY]{APOSETC}[aeiouA-Z]{L}*", _KEEP),
    (rf"{APOS}(?i:cause)|(?i:cont'd\.?|'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)", _KEEP),
    (rf"(?P<t>(?i:y){APOS}){L}", _KEEP),
    (r"(?i:https?)://[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]", _KEEP),
    (
        r"(?:(?:(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|(?:(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+"
        r"(?i:com|net|org|edu)))(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?",
        _KEEP,
    ),
    (r"[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00A0]*@(?:[^ \t\n\f\r\"<>|().\u00A0]+\.)*[^ \t\n\f\r\"<>|().\u00A0]+", _KEEP),
    (rf"@[a-zA-Z_][a-zA-Z_0-9]*|#{WORD}", _KEEP),
    (rf"(?P<t>{REDAUX})[^A-Za-z]", _RIGHT),
    (SREDAUX, _RIGHT),
    (r"\d{1,2}[\-/]\d{1,2}[\-/]\d{2,4}", _KEEP),
    (rf"[\-+]?\d+", _SOFT),
    (rf"[\-+]?\d*(?:{NUM_SEP}\d+)+", _SOFT),
    (r"[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)", _KEEP),
    (r"(?:\d{1,4}[- \u00A0])?\d{1,4}(?:\\?/|\u2044)\d{1,4}", _NBSP),
    (r"[\u00BC\u00BD\u00BE\u2153-\u215E]", lambda t: _FRACTIONS.get(t, t)),
    (r"-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls", _AMP),
    (rf"(?i:Cap){APOS}(?i:n)|(?i:c){APOS}(?i:est)", _KEEP),
    (THING3, _KEEP),
    (r"[A-Z]*\$|#", _KEEP),
    ("[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6]", _currency),
    (rf"(?P<t>{ACRO1}\.){SPACENL}+{FOLLOWER}{SPACENL}", "acronym"),
    (rf"(?P<t>{ABBREV1}){SENTEND}", "dup"),
    (ABBREV1, _KEEP),
    (rf"{ABBREV4}\.", _KEEP),
    (rf"(?P<t>{ABBREV4}){SPACE}", _KEEP),
    (rf"(?P<t>{ACRO}){SPACENL}", _KEEP),
    (rf"(?P<t>{APOS}[0-9][0-9]){SPACENL}", _KEEP),
    (rf"(?P<t>{WORD}\.){INSENTP}", _SOFT),
    (PHONE, lambda t: t.replace(" ", "\u00A0").replace("(", "-LRB-").replace(")", "-RRB-")),
    (rf"(?P<t>{DBLQUOT})[A-Za-z0-9$]", _LEFT),
    (DBLQUOT, _RIGHT),
    (r"&lt;|&gt;", lambda t: _ENTITIES[t]),
    (r"[()\[\]{}]", lambda t: _BRACKETS[t]),
    (r"-+", lambda t: "--" if 3 <= len(t) <= 4 else t),
    (r"\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026]", lambda t: "..."),
    (r"@+|#+|_+|\*+|(?:\\\*){1,3}|" + INSENTP + r"|[?!]+|=|/", _KEEP),
    (r"[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]", _KEEP),
    (rf"(?P<t>{HTHING}\.){INSENTP}", _SOFT),
    (HTHING, _SOFT),
    (rf"(?P<t>{THING}\.){INSENTP}", _KEEP),
    (THING, _KEEP),
    (rf"(?P<t>{THINGA}\.){INSENTP}", _AMP),
    (THINGA, _AMP),
    (r"(?P<t>')[A-Za-z][^ \t\n\r\u00A0]", _LEFT),
    (REDAUX, _RIGHT),
    (rf"{APOS}|''|[{QUOTECHARS}]{{1,2}}", _RIGHT),
    (r"<<|>>|<|>", _KEEP),
    (f"[{MISC}]", _KEEP),
    (r"[ \t\u00A0\u2000-\u200A\u3000\u200B\u200E\u200F\uFEFF\x00\x7f]+|&nbsp;", _DROP),
]
COMPILED = [(re.compile(p), a) for p, a in RULES]
