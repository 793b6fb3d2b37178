"""Which language a message is written in, well enough to pick its full-text configuration
(`inbox.search`). Pure: no Django, no database.

The users of the seeds write English, Dutch, Turkish, Estonian and Polish. A message is read
by counting its most common words (stop words) of each language in its first 1,000 characters,
and the letters only one of them uses (ı, ğ for Turkish; õ for Estonian; ł, ą, ę, ż ... for
Polish): about 25 µs a message, against milliseconds for a statistical detector, and good
enough here, because a wrong guess costs little: every query is searched in every
configuration (`inbox.search`), so a word is found whichever stemmer indexed it.

PostgreSQL has stemmers for English, Dutch and Turkish; Estonian and Polish (and anything
unknown) are indexed with the `simple` configuration and `unaccent`."""

# ruff: noqa: RUF001, RUF002 - the Turkish dotless i is a letter here, not a typo
from __future__ import annotations

import string

ENGLISH, DUTCH, TURKISH, ESTONIAN, POLISH = "en", "nl", "tr", "et", "pl"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    ENGLISH: _words(
        """
        the and of to is in that it for you with on this are be have we will please thanks your
        our from not but can would let me know about at as if an or was what there could should
        regards best hi dear
        """
    ),
    DUTCH: _words(
        """
        de het een en van ik je dat niet zijn op voor met wij er maar ook als bij nog naar
        kunnen u uw graag bedankt groet groeten hebben wordt deze dit worden heb hij zij om aan
        te over zou wel onze ons jullie alvast vriendelijke beste
        """
    ),
    TURKISH: _words(
        """
        ve bir bu için ile çok ne mi ama gibi daha olarak olan var yok sonra kadar şu her ben
        sen biz siz teşekkürler teşekkür merhaba lütfen saygılarımla değil diye ise veya hem
        göre ancak tüm iyi günler sizin bizim rica ederim
        """
    ),
    ESTONIAN: _words(
        """
        ja on ei et see ka kui aga oli mis või ning siis nii veel kas ta meie teie tänan aitäh
        palun lugupidamisega tere saan olen oleks selle seda ole juba ainult kõik üle pärast
        parimate soovidega head päeva
        """
    ),
    POLISH: _words(
        """
        w z na się nie że do jest jak ale po co tak za od oraz przez dla jestem jesteśmy który
        która które proszę dziękuję pozdrawiam dzień dobry będzie może tylko już czy także
        bardzo tym są panie pani państwa
        """
    ),
}
# Letters that point to one language; each one present counts as much as two stop words.
_LETTERS: dict[str, str] = {
    TURKISH: "ığş",
    ESTONIAN: "õ",
    POLISH: "łąężźśćń",
}
_LETTER_WEIGHT = 2
_SAMPLE = 1_000
# Stripped from the ends of each whitespace-separated word (a regular expression with Unicode
# classes, or str.translate on text that is not ASCII, costs three times as much).
_PUNCTUATION = string.punctuation + string.digits + "«»„“”’…–—"
_MINIMUM = 2  # fewer hints than this: unknown
# Each stop word → the languages it belongs to (a few belong to two), for one pass over a text.
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _language, _words_of_language in _STOPWORDS.items():
    for _word in _words_of_language:
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _language)


def detect(text: str) -> str | None:
    """The language code of `text` (ENGLISH ... POLISH), or None when the hints are too few or
    tie. Reads the first 1,000 characters."""
    sample = text[:_SAMPLE].lower()
    scores = dict.fromkeys(_STOPWORDS, 0)
    for word in sample.split():
        word = word.strip(_PUNCTUATION)
        for language in _LANGUAGES_OF.get(word, ()):
            scores[language] += 1
    for language, letters in _LETTERS.items():
        for letter in letters:
            if letter in sample:
                scores[language] += _LETTER_WEIGHT
    ranked = sorted(scores.values(), reverse=True)
    best = max(scores, key=scores.__getitem__)
    if ranked[0] < _MINIMUM or ranked[0] == ranked[1]:
        return None
    return best
