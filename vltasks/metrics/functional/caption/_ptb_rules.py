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
MARKS = (  # combining marks that Java's lexer accepts inside words (Python's re has no \p{M})
    "\u00ad\u0300-\u036f\u0483-\u0487\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0610-\u061a"
    "\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963\u0981-\u0983"
    "\u09bc-\u09d7\u0a01-\u0a03\u0a3c-\u0a51\u0a81-\u0a83\u0abc-\u0acd\u0b82\u0bbe-\u0bcd\u0c01-\u0c03"
    "\u0c3e-\u0c56\u0d3e-\u0d4d\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0eb1-\u0ebc\u0ec8-\u0ecd"
)
LETTER = rf"(?:{L}|{SPLET}|[{MARKS}])"
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
FOLLOWER = (
    "(?:" + "|".join(w[0] + "(?i:" + re.escape(w[1:]) + ")" if len(w) > 1 else w for w in _FOLLOWERS) + ")"
)
SENTEND = rf"{SPACENL}(?:{SPACENL}|[A-Z]|{SGML})"

ABMONTH = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
ABDAYS = "Mon|Tue|Tues|Wed|Thu|Thurs|Fri"
ABSTATE = (
    "Ala|Ariz|Calif|Colo|Conn|Dak|Del|Fla|Ga|Ind|Kans?|Ky|La|Md|Mich|Minn|Mo|Mont|Neb|Nev|Okla|Pa|Penn"
    "|Tenn|Tex|Va|Vt|Wisc?|Wyo"
)
ABCOMP = "Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys"
ABNUM = "Ph|tel|est|ext|sq|ft"
ABBREV3 = r"(?i:ca|figs?|prop|nos?|art|bldg|pp|op)\."  # an abbreviation only before a number
ABPTIT = r"Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq"
ABBREV1 = (
    rf"(?:(?i:{ABMONTH}|{ABDAYS}|{ABSTATE}|{ABCOMP}|{ABNUM}|{ABPTIT}|etc|al|seq)"
    r"|A(?i:rk)|I(?i:ll)|M(?i:ass)|M(?i:iss)|O(?i:re)|W(?i:ash))\."  # these need a capital
)
ABTITLE = (
    "Mr|Mrs|Ms|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Mt|Capt"
    "|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det"
)
ABBREV4 = (
    rf"(?:{ACRO}|(?i:a\.k\.a|{ABTITLE}|vs|Alex|Wm|Jos|Cie|cf|TREAS|Invt|Elec|Natl|M[ft]g)|M(?i:iss)|[A-Za-z])"
)
PHONE = (
    r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0])[0-9]{3,4}"
    r"[\- \u00A0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}"
)
MISC = (
    "+%&~^|\\\\\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00b3\u00b4-\u00ba\u00d7\u00f7\u0387"
    "\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044\u207a-\u207f\u208a-\u208e"
    "\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
)
QUOTECHARS = (
    "`\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093\u0094\u201e\u201f\u2039\u203a\u00ab\u00bb"
)


def quotes(tok: str, left: bool) -> str:
    """LaTeX-style quotes, as PTB3: ` `` for opening, ' '' for closing."""
    tok = re.sub(r"&apos;|'", "`" if left else "'", tok)
    tok = re.sub(r'"|&quot;', "``" if left else "''", tok)
    tok = re.sub("[\u0091\u2018\u201b\u2039]", "`", tok)
    tok = re.sub("[\u0092\u2019\u203a]", "'", tok)
    tok = re.sub("[\u0093\u201c\u00ab]", "``", tok)
    return re.sub("[\u0094\u201d\u00bb]", "''", tok)


def _currency(tok: str) -> str:
    return re.sub("[\u0080\u00a4\u20a0\u20ac]", "$", tok.replace("\u00a2", "cents").replace("\u00a3", "#"))


_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_ENTITIES = {"&lt;": "<", "&gt;": ">"}

# (pattern, action): the action maps the token text to output tokens; "split:k" emits the first k chars
# and rescans the rest; "dup" emits the token and rescans its final period (abbreviation at sentence end).
Action = Callable[[str], str | None] | str
_KEEP: Action = lambda t: t  # noqa: E731
_NBSP: Action = lambda t: t.replace(" ", "\u00a0")  # noqa: E731
_AMP: Action = lambda t: re.sub("(?i)&amp;", "&", t)  # noqa: E731
_RIGHT: Action = lambda t: quotes(t, False)  # noqa: E731
_LEFT: Action = lambda t: quotes(t, True)  # noqa: E731
_SOFT: Action = lambda t: t.replace("\u00ad", "") or "-"  # noqa: E731
_DROP: Action = lambda t: None  # noqa: E731

RULES: list[tuple[str, Action]] = [
    (r"(?P<t>(?i:cannot|gimme|gonna|gotta|lemme|wanna))", "split:3"),
    (rf"(?P<t>{APOS}(?i:tis|twas))", "split:2"),
    (SGML, _NBSP),
    (r"&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", lambda t: "--"),
    (r"&amp;", _AMP),
    (r"&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", _KEEP),
    (rf"(?P<t>{ABBREV1}){L}(?=[\s.,;:!?)]|$)", _KEEP),  # "Jan.I" -> "Jan." "I" (but "Jan.He" stays whole)
    (rf"(?P<t>{WORD}){REDAUX}", _SOFT),
    (rf"(?P<t>{SWORD}){SREDAUX}", _SOFT),
    (WORD, _SOFT),
    (rf"{APOS}(?i:n){APOS}?", _KEEP),
    (
        rf"[lLdDjJ]{APOS}|(?i:dunkin|somethin|ol){APOS}|{APOS}(?i:em)|{APOS}[2-9]0(?i:s)|{APOS}(?i:till?)",
        _KEEP,
    ),
    (rf"[A-HJ-XZn]{APOSETC}{L}{{2}}{L}*", _KEEP),
    (rf"{L}+[aeiouyAEIOUY]{APOSETC}[aeiouA-Z]{L}*", _KEEP),
    (rf"{APOS}(?i:cause)|(?i:cont'd\.?|'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)", _KEEP),
    (rf"(?P<t>(?i:y){APOS}){L}", _KEEP),
    (r"(?i:https?)://[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]", _KEEP),
    (
        r"(?:(?:(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})"
        r"|(?:(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+(?i:com|net|org|edu)))"
        r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?",
        _KEEP,
    ),
    (
        r"[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00A0]*@"
        r"(?:[^ \t\n\f\r\"<>|().\u00A0]+\.)*[^ \t\n\f\r\"<>|().\u00A0]+",
        _KEEP,
    ),
    (rf"@[a-zA-Z_][a-zA-Z_0-9]*|#{WORD}", _KEEP),
    (rf"(?P<t>{REDAUX})[^A-Za-z]", _RIGHT),
    (SREDAUX, _RIGHT),
    (r"\d{1,2}[\-/]\d{1,2}[\-/]\d{2,4}", _KEEP),
    (r"[\-+]?\d+", _SOFT),
    (rf"[\-+]?\d*(?:{NUM_SEP}\d+)+", _SOFT),
    (r"[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)", _KEEP),
    (r"(?:\d{1,4}[- \u00A0])?\d{1,4}(?:\\?/|\u2044)\d{1,4}", _NBSP),
    (r"[\u00BC\u00BD\u00BE\u2153-\u215E]", lambda t: _FRACTIONS.get(t, t)),
    (r"-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls", _AMP),
    (rf"(?i:Cap){APOS}(?i:n)|(?i:c){APOS}(?i:est)", _KEEP),
    (THING3, _KEEP),
    (r"[A-Z]*\$|#", _KEEP),
    ("[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]", _currency),
    (rf"(?P<t>{ACRO1}\.){SPACENL}+{FOLLOWER}{SPACENL}", "acronym"),
    (rf"(?P<t>{ABBREV1}){SENTEND}", "dup"),
    (ABBREV1, _KEEP),
    (rf"(?P<t>{ABBREV3}){SPACENL}?\d", _KEEP),
    (rf"{ABBREV4}\.", _KEEP),
    (rf"(?P<t>{ABBREV4}){SPACE}", _KEEP),
    (rf"(?P<t>{ACRO}){SPACENL}", _KEEP),
    (rf"(?P<t>{APOS}[0-9][0-9]){SPACENL}", _KEEP),
    (rf"(?P<t>{WORD}\.){INSENTP}", _SOFT),
    (PHONE, lambda t: t.replace(" ", "\u00a0").replace("(", "-LRB-").replace(")", "-RRB-")),
    (
        r"(?P<t>[<>]?[:;=][\-o*']?[()DPdp\]|\\@])[^A-Za-z0-9]",
        lambda t: t.replace("(", "-LRB-").replace(")", "-RRB-"),
    ),
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
