"""Lexical guard for semantic-cache hits: may a near match (cosine above the threshold) be served?

Sentence embeddings are close for prompts that share topic and wording but ask different things: "capital of
France" / "capital of Germany", "order 1234" / "order 1243", "is X safe" / "is X not safe", "best" / "worst",
"import from Canada, sell in India" / "import from India, sell in Canada" (cosine 0.997). An embedding
averages over tokens, so the one word that decides the answer barely moves the vector. This guard looks at
exactly those words, in the two prompt texts only (~0.1 ms a pair, ~15 µs once both prompts are
parsed, as parses are cached), and rejects with a reason:

- "numbers": the numbers differ, compared as written and counted (1234 != 1243, 3.5 != 35, "iPhone 6" !=
  "6s", 2016-11-08 != 2016-11-09); number words ("two", "hundred") count too. A number usually *is* the
  question.
- "negation": the prompts carry a different count of negations (not, no, never, n't, without, ...); the
  framing "or not", "why or why not", "if not" does not count.
- "antonym": a word in one prompt has its opposite in the other, from a small hand-written list of general
  pairs (best/worst, buy/sell, before/after, ...) or by a negating prefix (legal/illegal); or one prompt
  asks for both of a pair and the other for one ("advantages" / "advantages and disadvantages").
- "direction": two shared content words swap roles, a role being the preposition that governs the word
  ("from A to B" / "from B to A", "A better than B" / "B better than A"). "A and B" inherits A's role, so
  "between A and B" / "between B and A" passes. Also a swap of negation scope ("A and not B" / "B and not
  A") or of emphasis (a mention moves from one shared word to another: "a war between A and B: how can A
  win?" / "... how can B win?").
- "question": the prompts ask for a different kind of answer: why, who, when, where, how much / many / long
  / old / often / far. "what", "which" and "how" are interchangeable framing ("what is the best way to X" /
  "how do I X"). "What does X do?" (a function) against a prompt with no such question ("What is X?").
- "tense": the first auxiliary is past (did, had) in one prompt and not in the other: "How did you
  become a pilot?" / "How do you become a pilot?" asks for an experience, not a method. Modality is not
  compared: can/do/should/will are paraphrases in how-to questions far more often than not ("How should I
  prepare for X?" / "How do I prepare for X?"), and the copula shifts freely ("Was / Is Stalin a hero?").
- "reference": third-person pronouns differ in gender or number ("tell my crush I like him" / "... her";
  "his/her", "he or she" are neutral), or a demonstrative in number ("this symbol" / "these symbols").
  First and second person are interchangeable (the generic "you" of "how do you X" is "I").
- "content_words": a content word (not a stopword or question framing, after lowercasing and light suffix
  stemming) is in one prompt only. Names, objects and qualifiers decide the answer. Near-identical
  derivations ("programmer" / "programming") and typos (one letter added, dropped or swapped in a long word)
  pass. Weekdays count as numbers (dates).

The "content_words" rule is the main recall limiter: paraphrases swap words ("buy" / "purchase") and add
qualifiers ("today", "exactly how"). A second stage, run by the caller because it needs the embedder, may
overturn it; `GuardVerdict.unmatched` then holds the unmatched words of each side (as written, lowercased).
It is left empty, and the rejection is final, when an unmatched word is written like a name ("France",
"NASA") or a side has more than MAX_UNMATCHED of them. The stage allows:
- a substitution, `synonyms_cover`: every unmatched word on each side has a counterpart on the other side
  with single-word MiniLM cosine >= SYNONYM_MIN_COSINE (0.8). Measured: buy/purchase 0.87, car/vehicle 0.87,
  movie/film 0.84, begin/start 0.84, quickly/fast 0.83, big/large 0.81; but co-hyponyms mostly stay below:
  france/germany 0.74, uk/usa 0.73, dog/cat 0.66, summer/winter 0.60, iphone/android 0.56, apple/microsoft
  0.49, python/java 0.44. Word cosine cannot tell synonyms from all co-hyponyms (monday/tuesday 0.87 and
  husband/wife 0.87, hence weekdays as numbers and husband/wife as antonyms; democrat/republican 0.81 passes
  only when not capitalised), and many true synonyms score lower (job/career 0.67, learn/study 0.53), so
  the bar is high.
- an addition, `addition_allowed`: words added on one side only (a qualifier, not a swapped entity),
  allowed when the prompts' sentence cosine is >= ADDITION_MIN_COSINE (0.96): an added word that decides
  the answer moves a sentence embedding more than that ("population of Tokyo" / "... in winter" 0.85).
  Word cosine says nothing here (an added word close to a word of the other prompt is as often a different
  question as not), so the sentence cosine is the only test.

Case, punctuation, stopwords, question framing ("how can I", "what are some", "can you explain"), modal
auxiliaries and inflection ("learning" / "learns") are allowed to differ. The lists are general English, not
tuned to a data set.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    ok: bool
    reason: str = ""
    # For a "content_words" rejection that a second stage may overturn: the unmatched content words of
    # (query, cached), as written (lowercased). Empty when the rejection is final.
    unmatched: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


ALLOWED: Final = GuardVerdict(ok=True)
_CONTENT_WORDS: Final = GuardVerdict(ok=False, reason="content_words")
MAX_UNMATCHED: Final = 3  # per side; more changed words is a different question, whatever the synonyms
SYNONYM_MIN_COSINE: Final = 0.8
ADDITION_MIN_COSINE: Final = 0.96

# Sentence punctuation (group 1), numbers with their unit or model suffix ("6s", "m605dh", "2016-11-08"),
# words with an apostrophe ("don't", "what's").
_TOKEN: Final = re.compile(r"([.?!:;])|[a-z]*\d+(?:[.,:/-]\d+)*[a-z\d]*|[a-z]+(?:'[a-z]+)?", re.IGNORECASE)
_AUXILIARIES: Final = ("is", "are", "was", "were", "do", "does", "did", "has", "have", "had", "could",
                       "would", "should", "must", "need", "ai")  # fmt: skip
_NEGATED_CONTRACTIONS: Final = {
    **{f"{auxiliary}n't": auxiliary for auxiliary in _AUXILIARIES},
    **{f"{auxiliary}nt": auxiliary for auxiliary in _AUXILIARIES},
    "can't": "can", "cant": "can", "cannot": "can", "won't": "will", "wont": "will", "shan't": "shall",
}  # fmt: skip
# Contracted auxiliaries become tokens of their own; "'s" only after words it cannot mark a possessive of.
_CONTRACTED: Final = {"ll": "will", "re": "are", "ve": "have", "m": "am"}
_IS_CONTRACTED_AFTER: Final = frozenset(
    {
        "what",
        "who",
        "where",
        "when",
        "why",
        "how",
        "which",
        "it",
        "he",
        "she",
        "that",
        "there",
        "here",
    }
)
_THOUSANDS_SEPARATOR: Final = re.compile(r"(?<=\d),(?=\d{3}\b)")

# fmt: off
_NUMBER_WORDS: Final = {
    "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18",
    "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
    "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000",
    "million": "1000000", "billion": "1000000000", "half": "0.5", "dozen": "12",
    # Weekdays are dates, and the one closed class whose members MiniLM puts as close as synonyms.
    "monday": "day1", "tuesday": "day2", "wednesday": "day3", "thursday": "day4", "friday": "day5",
    "saturday": "day6", "sunday": "day7",
}
_NEGATIONS: Final = frozenset({
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "nowhere",
})
# Function words and question framing: a difference in these does not change what is asked.
_STOPWORDS: Final = frozenset({
    "a", "an", "the", "i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "you", "your",
    "yours", "yourself", "yourselves", "he", "him", "his", "she", "her", "hers", "it", "its", "itself",
    "they", "them", "their", "theirs", "this", "that", "these", "those", "there", "here", "what",
    "which", "who", "whom", "whose", "when", "where", "why", "how", "whether", "is", "am", "are", "was",
    "were", "be", "been", "being", "do", "does", "did", "doing", "done", "have", "has", "had", "having",
    "will", "would", "shall", "should", "can", "could", "may", "might", "must", "ought", "and", "or",
    "but", "if", "then", "so", "as", "because", "while", "of", "at", "by", "for", "with", "about",
    "into", "onto", "through", "during", "to", "from", "in", "on", "again", "further", "once", "any",
    "both", "each", "such", "only", "own", "same", "too", "very", "just", "also", "really", "actually",
    "even", "ever", "yet", "etc", "eg", "ie", "e", "g", "s", "t", "d", "m", "ll", "re", "ve", "please",
    "someone", "somebody", "something", "anything", "anyone", "anybody", "one", "ones", "thing",
    "things", "way", "ways", "best", "good", "great", "top", "easiest", "easy", "effective", "possible",
    "method", "methods", "tip", "tips", "step", "steps", "know", "tell", "explain", "describe", "mean",
    "much", "many", "lot", "lots", "kind", "kinds", "some", "sort", "exactly", "simply", "basically",
    "generally", "usually", "typically", "guys", "quora", "answer", "question", "questions", "suggest",
    "suggestion", "suggestions", "recommend", "recommendation", "recommendations", "idea", "ideas",
    "example", "examples", "like", "via", "get", "getting", "go", "going", "think", "opinion",
})
_PREPOSITIONS: Final = frozenset({
    "from", "to", "into", "onto", "toward", "towards", "than", "of", "in", "on", "at", "by", "for", "with",
    "about", "between", "among", "over", "under", "above", "below", "after", "before", "through", "via",
    "against", "within", "without", "across", "behind", "beyond",
})
_COORDINATORS: Final = frozenset({"and", "or", "nor", "vs", "versus"})
_DETERMINERS: Final = frozenset({
    "the", "a", "an", "my", "your", "his", "her", "its", "our", "their", "this", "that", "these", "those",
    "some", "any", "all", "every", "each",
})
_QUESTION_WORDS: Final = {"why": "why", "who": "who", "whom": "who", "whose": "who", "when": "when",
                          "where": "where"}
_HOW_QUANTITY: Final = frozenset({"much", "many", "long", "old", "often", "far"})
_DO: Final = frozenset({"do", "does", "did"})
_ADVICE_SUBJECTS: Final = frozenset({"i", "you", "we"})  # "What do I do?" asks for advice, not a function
_PRONOUN_SUBJECTS: Final = frozenset({"they", "it", "he", "she", "one"})
# The first auxiliary dates the question: "did"/"had" ask about a past event, everything else does not.
# "was"/"were" are left out: a copula shifts freely with the subject ("Was/Is Stalin a hero?").
_TENSE: Final = {
    **dict.fromkeys(("did", "had"), "past"),
    **dict.fromkeys(("do", "does", "am", "is", "are", "was", "were", "has", "have", "can", "could", "may",
                     "might", "should", "ought", "must", "will", "would", "shall"), "nonpast"),
}  # fmt: skip
_THIRD_PERSON: Final = {
    **dict.fromkeys(("he", "him", "his", "himself"), "he"),
    **dict.fromkeys(("she", "her", "hers", "herself"), "she"),
    **dict.fromkeys(("they", "them", "their", "theirs", "themselves"), "they"),
}
_DEMONSTRATIVES: Final = {"this": "singular", "these": "plural", "those": "plural"}  # "that": mostly relative
_NEGATION_SCOPE_ENDS: Final = frozenset({"but"})
_IRREGULAR: Final = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "made": "make", "bought": "buy", "sold": "sell", "took": "take",
    "taken": "take", "gave": "give", "given": "give", "went": "go", "gone": "go", "got": "get",
    "gotten": "get", "began": "begin", "begun": "begin", "wrote": "write", "written": "write",
    "ate": "eat", "eaten": "eat", "knew": "know", "known": "know", "thought": "think", "found": "find",
    "felt": "feel", "kept": "keep", "lost": "lose", "paid": "pay", "said": "say",
    "seen": "see", "sent": "send", "spent": "spend", "taught": "teach", "told": "tell",
    "won": "win", "chose": "choose", "chosen": "choose", "became": "become", "ran": "run",
}
_ANTONYM_PAIRS: Final = (
    "best/worst", "good/bad", "better/worse", "increase/decrease", "buy/sell", "before/after",
    "import/export", "more/less", "most/least", "high/low", "higher/lower", "highest/lowest",
    "big/small", "large/small", "bigger/smaller", "biggest/smallest", "long/short", "longer/shorter",
    "fast/slow", "faster/slower", "cheap/expensive", "hot/cold", "easy/hard", "easy/difficult",
    "early/late", "first/last", "old/new", "old/young", "gain/lose", "win/lose", "positive/negative",
    "pros/cons", "advantage/disadvantage", "benefit/drawback", "true/false", "right/wrong", "rich/poor",
    "strong/weak", "open/close", "start/stop", "begin/end", "push/pull", "up/down", "on/off", "max/min",
    "maximum/minimum", "above/below", "over/under", "inside/outside", "male/female", "man/woman",
    "men/women", "boy/girl", "husband/wife", "love/hate", "accept/reject", "add/remove",
    "include/exclude", "enable/disable", "input/output", "upload/download", "send/receive",
    "lend/borrow", "give/take", "arrive/leave", "enter/exit", "heavy/light", "dark/light", "day/night",
    "happy/sad", "safe/dangerous", "success/failure", "north/south", "east/west", "left/right",
    "past/future", "always/never", "everything/nothing", "all/none", "agree/disagree", "mother/father",
    "son/daughter", "brother/sister", "upgrade/downgrade", "encrypt/decrypt", "encode/decode",
    "maximize/minimize", "rise/fall", "wet/dry", "thick/thin", "fat/thin", "deep/shallow",
    "wide/narrow", "internal/external", "public/private", "major/minor", "top/bottom", "attack/defend",
    "employer/employee", "with/without", "pro/con", "cause/cure", "asleep/awake", "ancient/modern",
    "friend/enemy", "strength/weakness", "love/hatred", "like/dislike",
)
# fmt: on
_NEGATING_PREFIXES: Final = ("un", "in", "im", "il", "ir", "dis", "non", "anti")


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """Light suffix stripping, enough to equate inflections (learns/learning/learned, cities/city)."""
    if word in _IRREGULAR:
        word = _IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement, min_len in (
        ("ies", "y", 5),
        ("ied", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("eed", "eed", 4),  # need, speed: kept whole, not "ne"
        ("ed", "", 4),
        ("ly", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len:
            if suffix == "es" and not word.endswith(("ses", "xes", "zes", "ches", "shes")):
                continue
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                continue
            word = word[: len(word) - len(suffix)] + replacement
            break
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # running -> runn -> run
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # make/making, use/used
    return word


def _antonyms() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for pair in _ANTONYM_PAIRS:
        left, right = (_stem(word) for word in pair.split("/"))
        table.setdefault(left, set()).add(right)
        table.setdefault(right, set()).add(left)
    return {word: frozenset(opposites) for word, opposites in table.items()}


_ANTONYMS: Final = _antonyms()
# Function words by kind; a later kind wins ("without" is a negation, "and" a coordinator).
_KINDS: Final = {
    word: kind
    for kind, words in (
        ("stopword", _STOPWORDS),
        ("determiner", _DETERMINERS),
        ("preposition", _PREPOSITIONS),
        ("coordinator", _COORDINATORS),
        ("negation", _NEGATIONS),
        ("number", _NUMBER_WORDS),
    )
    for word in words
}
# Inflected framing ("meaning", "ideas"); short words are left out, as "use" and "us" share a stem.
_STOP_STEMS: Final = frozenset(_stem(word) for word in _STOPWORDS if len(word) >= 4)


@dataclass(frozen=True, slots=True)
class _Parsed:
    numbers: tuple[str, ...]  # sorted, with repeats
    negations: int
    asks: frozenset[str]  # kinds of answer asked for: "why", "how much", ...
    stems: frozenset[str]
    content: frozenset[str]
    names: frozenset[str]  # content stems written like names ("France", "NASA")
    roles: Mapping[str, str]  # content stem -> governing preposition at its first occurrence ("" = none)
    surface: Mapping[str, str]  # content stem -> the word as first written, lowercased
    counts: Mapping[str, int]  # content stem -> mentions
    negated: frozenset[str]  # content stems after a negation in their sentence
    tense: str  # of the first auxiliary: "past", "nonpast" or "" (none)
    function: str  # "What does X do?": "named" X, "pronoun" ("what does it do?") or "" (no such question)
    pronouns: frozenset[str]  # third-person pronouns by gender / number: "he", "she", "they"
    demonstratives: frozenset[str]  # "singular" (this), "plural" (these, those)


def _tokens(text: str) -> list[tuple[str, bool, bool]]:
    """Lowercased tokens, each with whether it looks like a name (capitalised mid-sentence, or an acronym)
    and whether it starts a sentence. Negated contractions become two tokens: "don't" -> "do", "not"."""
    tokens: list[tuple[str, bool, bool]] = []
    sentence_start = True
    shouted = 0
    for match in _TOKEN.finditer(text.replace("\u2019", "'")):
        if match.lastindex:
            sentence_start = True
            continue
        token = match.group()
        lowered = token.lower()
        acronym = len(token) > 1 and token.isupper()
        shouted += acronym
        if lowered in _NEGATED_CONTRACTIONS:
            tokens += ((_NEGATED_CONTRACTIONS[lowered], False, sentence_start), ("not", False, False))
        else:
            lowered, _, suffix = lowered.partition("'")
            titled = token[0].isupper() and not sentence_start and lowered not in _STOPWORDS
            tokens.append((lowered, acronym or titled, sentence_start))
            if suffix == "s" and lowered in _IS_CONTRACTED_AFTER:
                tokens.append(("is", False, False))
            elif suffix in _CONTRACTED:
                tokens.append((_CONTRACTED[suffix], False, False))
        sentence_start = False
    if shouted * 2 > len(tokens):  # ALL-CAPS text says nothing about names
        return [(token, False, starts) for token, _, starts in tokens]
    return tokens


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> _Parsed:
    tokens = _tokens(text)
    numbers: list[str] = []
    asks: set[str] = set()
    stems: set[str] = set()
    roles: dict[str, str] = {}
    surface: dict[str, str] = {}
    names: set[str] = set()
    counts: dict[str, int] = {}
    negated: set[str] = set()
    in_negation = False  # after a negation, until the end of the sentence or a "but"
    tense = ""
    function = ""
    negations = 0
    role = ""  # preposition governing the next content word
    last_role = ""  # role of the latest content word, inherited through "and"/"or"
    for i, (token, name, starts) in enumerate(tokens):
        kind = "number" if not token.isalpha() else _KINDS.get(token, "")
        in_negation = in_negation and not starts and token not in _NEGATION_SCOPE_ENDS
        tense = tense or _TENSE.get(token, "")
        if kind == "number":
            numbers.append(_NUMBER_WORDS.get(token) or _THOUSANDS_SEPARATOR.sub("", token))
            role = ""
            continue
        if kind == "negation" and not _is_framing_negation(tokens, i):
            negations += 1
            in_negation = True
        elif starts and token in _QUESTION_WORDS and _opens_question(tokens, i):
            asks.add(_QUESTION_WORDS[token])
        elif token in _HOW_QUANTITY and i and tokens[i - 1][0] == "how" and tokens[i - 1][2]:
            asks.add(f"how {token}")
        elif not function:
            function = _asks_function(tokens, i)
        stem = _stem(token)
        stems.add(stem)
        if name and kind != "negation":
            kind = ""  # "US", "IT", "May": a name is content even when spelled like a function word
        if kind == "preposition":
            role = token
        elif kind == "coordinator":
            role = last_role
        elif kind == "determiner":
            continue
        elif kind or (stem in _STOP_STEMS and not name):
            role = ""
        else:
            roles.setdefault(stem, role)
            surface.setdefault(stem, token)
            counts[stem] = counts.get(stem, 0) + 1
            if in_negation:
                negated.add(stem)
            last_role, role = role, ""
            if name:
                names.add(stem)
    return _Parsed(
        numbers=tuple(sorted(numbers)),
        negations=negations,
        asks=frozenset(asks),
        stems=frozenset(stems),
        content=frozenset(roles),
        names=frozenset(names),
        roles=roles,
        surface=surface,
        counts=counts,
        negated=frozenset(negated),
        tense=tense,
        function=function,
        pronouns=_pronouns([token for token, _, _ in tokens]),
        demonstratives=frozenset(_DEMONSTRATIVES[word] for word, _, _ in tokens if word in _DEMONSTRATIVES),
    )


def _opens_question(tokens: list[tuple[str, bool, bool]], i: int) -> bool:
    """A question word that opens a sentence of its own; a tacked-on "Why?" or "why or why not?" does not."""
    following = tokens[i + 1] if i + 1 < len(tokens) else ("", False, True)
    return not following[2] and following[0] != "or"


def _asks_function(tokens: list[tuple[str, bool, bool]], i: int) -> str:
    """ "What does a barometer do?" (at tokens[i]) asks for a function, not a definition ("What is a
    barometer?"): "named", or "pronoun" for "what do they do?" (referring back to a thing named elsewhere)."""
    if tokens[i][0] != "what" or not (tokens[i][2] or tokens[i - 1][0] == "and"):
        return ""
    j = i + 1
    if j + 1 < len(tokens) and tokens[j][0] not in _DO and tokens[j + 1][0] in _DO:
        j += 1  # "what exactly does"
    end = j + 1
    while end < len(tokens) and not tokens[end][2]:
        end += 1
    if j >= len(tokens) or tokens[j][0] not in _DO or end - j <= 2 or tokens[end - 1][0] != "do":
        return ""
    subject = tokens[j + 1][0]
    return "" if subject in _ADVICE_SUBJECTS else "pronoun" if subject in _PRONOUN_SUBJECTS else "named"


def _pronouns(tokens: list[str]) -> frozenset[str]:
    """Third-person pronouns by gender / number; "his/her", "he or she" are neutral and left out."""
    kinds = [_THIRD_PERSON.get(token, "") for token in tokens]
    paired: set[int] = set()
    for i, kind in enumerate(kinds):
        if kind in ("he", "she"):
            j = i + 2 if i + 2 < len(tokens) and tokens[i + 1] in ("or", "and") else i + 1
            if j < len(tokens) and kinds[j] in ("he", "she") and kinds[j] != kind:
                paired.update((i, j))
    return frozenset(kind for i, kind in enumerate(kinds) if kind and i not in paired)


def _is_framing_negation(tokens: list[tuple[str, bool, bool]], i: int) -> bool:
    """ "... or not", "why or why not", "yes or no", "if not, ..." ask nothing negated."""
    before = [token for token, _, _ in tokens[max(0, i - 2) : i]]
    return bool(before) and (before[-1] in ("or", "if") or before == ["or", "why"])


def _has_antonym(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    for word in mine - theirs:
        opposites = _ANTONYMS.get(word, frozenset())
        if not opposites.isdisjoint(theirs - mine):
            return True
        if not opposites.isdisjoint(mine & theirs):  # "pros" / "pros and cons": one side asks for both
            return True
        if word.startswith(_NEGATING_PREFIXES):
            for prefix in _NEGATING_PREFIXES:
                base = word.removeprefix(prefix)
                if base != word and len(base) >= 4 and base in theirs and base not in mine:
                    return True
    return False


def _swapped(query: _Parsed, cached: _Parsed) -> bool:
    shared = [word for word in query.roles if word in cached.roles]
    for i, first in enumerate(shared):
        for second in shared[i + 1 :]:
            a, b = query.roles[first], query.roles[second]
            if a != b and cached.roles[first] == b and cached.roles[second] == a:
                return True
    common = frozenset(shared)
    negated, other_negated = query.negated & common, cached.negated & common
    if negated - other_negated and other_negated - negated:  # "X and not Y" / "Y and not X"
        return True
    more = [query.counts[word] - cached.counts[word] for word in shared]
    return max(more, default=0) > 0 > min(more, default=0)  # a mention moved from one word to another


def _near(word: str, other: str) -> bool:
    """A derivation ("programmer"/"programming": long common prefix) or a typo in a long word."""
    if word[0] != other[0]:
        return False
    shorter = min(len(word), len(other))
    common = 0
    while common < shorter and word[common] == other[common]:
        common += 1
    if common >= 5 and common >= 0.75 * shorter:
        return True
    if shorter < 5 or abs(len(word) - len(other)) > 1:
        return False
    if len(word) == len(other):  # one swap of neighbours ("brust"/"burst")
        rest = common + 2
        swapped = word[common:rest] == other[common:rest][::-1]
        return swapped and word[rest:] == other[rest:]
    longer, short = (word, other) if len(word) > len(other) else (other, word)
    return longer[:common] + longer[common + 1 :] == short  # one letter added or dropped


def _unmatched(mine: _Parsed, theirs: _Parsed) -> tuple[str, ...]:
    return tuple(
        sorted(
            word
            for word in mine.content - theirs.content
            if not any(_near(word, other) for other in theirs.content)
        )
    )


def _content_difference(query: _Parsed, cached: _Parsed) -> GuardVerdict:
    """ALLOWED, or a "content_words" rejection, with the unmatched words if a second stage may overturn it."""
    mine, theirs = _unmatched(query, cached), _unmatched(cached, query)
    if not mine and not theirs:
        return ALLOWED
    if (
        len(mine) > MAX_UNMATCHED
        or len(theirs) > MAX_UNMATCHED
        or not query.names.isdisjoint(mine)
        or not cached.names.isdisjoint(theirs)
    ):
        return _CONTENT_WORDS
    return GuardVerdict(
        ok=False,
        reason="content_words",
        unmatched=(
            tuple(query.surface[word] for word in mine),
            tuple(cached.surface[word] for word in theirs),
        ),
    )


def guard_check(query: str, cached: str) -> GuardVerdict:
    """Decide whether the answer cached for `cached` may be served for `query`, already known to be close.

    Returns `ALLOWED`, or a rejecting verdict whose reason is "numbers", "negation", "antonym", "direction",
    "question", "tense", "reference" or "content_words" (see the module docstring). A "content_words" verdict
    with a non-empty `unmatched` may still be overturned by `addition_allowed` or `synonyms_cover`.
    """
    q, c = _parse(query), _parse(cached)
    if q.numbers != c.numbers:
        return GuardVerdict(ok=False, reason="numbers")
    if q.negations != c.negations:
        return GuardVerdict(ok=False, reason="negation")
    if _has_antonym(q.stems, c.stems) or _has_antonym(c.stems, q.stems):
        return GuardVerdict(ok=False, reason="antonym")
    if _swapped(q, c):
        return GuardVerdict(ok=False, reason="direction")
    if q.asks != c.asks or {q.function, c.function} == {"named", ""}:
        return GuardVerdict(ok=False, reason="question")
    if q.tense and c.tense and q.tense != c.tense:
        return GuardVerdict(ok=False, reason="tense")
    if _differ(q.pronouns, c.pronouns) or _differ(q.demonstratives, c.demonstratives):
        return GuardVerdict(ok=False, reason="reference")
    return _content_difference(q, c)


def _differ(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    return bool(mine) and bool(theirs) and mine != theirs


def synonyms_cover(
    unmatched: tuple[tuple[str, ...], tuple[str, ...]], vectors: Mapping[str, np.ndarray[Any, Any]]
) -> bool:
    """Whether each unmatched word on each side has a synonym on the other: cosine >= SYNONYM_MIN_COSINE.

    `vectors` maps each word of `unmatched` to its unit-length embedding (same model as the prompts).
    """
    mine, theirs = unmatched
    if not mine or not theirs:
        return False
    cosines = np.stack([vectors[word] for word in mine]) @ np.stack([vectors[word] for word in theirs]).T
    return bool(
        cosines.max(axis=1).min() >= SYNONYM_MIN_COSINE and cosines.max(axis=0).min() >= SYNONYM_MIN_COSINE
    )


def addition_allowed(unmatched: tuple[tuple[str, ...], tuple[str, ...]], cosine: float) -> bool:
    """Whether the words are only added on one side and the prompts' cosine is >= ADDITION_MIN_COSINE."""
    mine, theirs = unmatched
    return bool(mine) != bool(theirs) and cosine >= ADDITION_MIN_COSINE
