"""English text normalisation: symbols, numbers and abbreviations rewritten as the words a reader would say.

"Call 555-1234 by 12/01/2026, costs $3.50, see https://example.com" becomes "Call five five five, one two three
four by December first, twenty twenty-six, costs three dollars and fifty cents, see example dot com".

The rules run in order, each over the whole text, and each one's output is words, so a later rule never re-reads
what an earlier one wrote: addresses and phone numbers go first (they are full of dots, dashes and digits), then
dates, times and money, then the general number rules. Anything no rule recognises is left exactly as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from text import numbers
from text.abbreviations import ABBREVIATION, sentence_follows, spell_out
from text.web import EMAIL, URL, say_email, say_url

_NUMBER = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+"
"""An integer (thousands commas allowed), a decimal, or a bare fraction part like .5."""
_START = r"(?<![\w.,])"
"""A number starts here: not inside a word, nor after a decimal point or thousands comma."""
_END = r"(?![\w]|[.,][0-9])"

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_MONTH_BY_NAME = {name: index for index, name in enumerate(_MONTHS, start=1)}
_MONTH_BY_NAME.update({name[:3]: index for name, index in list(_MONTH_BY_NAME.items())})
_MONTH_BY_NAME["Sept"] = 9
_MONTH_NAME = "|".join(sorted(_MONTH_BY_NAME, key=len, reverse=True))


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    say: Callable[[re.Match[str]], str]


# --- phone numbers --------------------------------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+.-])(?:"
    r"\+[0-9]{1,3}(?:[ .-]?\([0-9]{1,4}\))?(?:[ .-][0-9]{1,4}){2,5}"  # +44 20 7946 0958, +1 (555) 123-4567
    r"|(?:1[ .-])?\([0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}"  # (555) 123-4567
    r"|(?:1[.-])?[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}"  # 555-123-4567, 1-800-555-1234
    r"|[0-9]{3}-[0-9]{4}"  # 555-1234
    r"|0[0-9]{2,4}[ .-][0-9]{3,8}(?:[ .-][0-9]{3,4})?"  # 07700 900123, 020 7946 0958: a trunk prefix
    r")(?![\w]|[.-][0-9])"
)
_DIGIT_GROUP = re.compile(r"[0-9]+")


def _say_phone(match: re.Match[str]) -> str:
    groups = [numbers.digits(group) for group in _DIGIT_GROUP.findall(match[0])]
    spoken = ", ".join(groups)
    return f"plus {spoken}" if match[0].startswith("+") else spoken


# --- dates ----------------------------------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"(?<![\w.-])([0-9]{4})-([0-9]{2})-([0-9]{2})(?![\w]|[.-][0-9])")
_SLASH_DATE = re.compile(r"(?<![\w/.])([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}|[0-9]{2})(?![\w/]|\.[0-9])")
_MONTH_DAY = re.compile(
    rf"\b(?P<month>{_MONTH_NAME})\.?\s+(?P<day>[0-9]{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>[0-9]{{4}})\b)?"
)
_DAY_MONTH = re.compile(
    rf"(?<![\w.,])(?P<day>[0-9]{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{_MONTH_NAME})\b\.?"
    rf"(?:,?\s+(?P<year>[0-9]{{4}})\b)?"
)


def _spoken_year(written: str) -> str:
    if len(written) == 2:
        return numbers.digits(written) if written.startswith("0") else numbers.cardinal(written)
    return numbers.year(written)


def _say_date(month: int, day: int, year: str | None, day_first: bool) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    name, day_words = _MONTHS[month - 1], numbers.ordinal(str(day))
    spoken = f"the {day_words} of {name}" if day_first else f"{name} {day_words}"
    if year is None:
        return spoken
    return f"{spoken} {_spoken_year(year)}" if day_first else f"{spoken}, {_spoken_year(year)}"


def _date_rules(day_first: bool) -> list[_Rule]:
    def iso(match: re.Match[str]) -> str:
        return _say_date(int(match[2]), int(match[3]), match[1], day_first) or match[0]

    def slashed(match: re.Match[str]) -> str:
        first, second = int(match[1]), int(match[2])
        month, day = (second, first) if day_first else (first, second)
        if month > 12 >= day:  # 25/12/2026 can only be day first, whatever the style
            month, day = day, month
        return _say_date(month, day, match[3], day_first) or match[0]

    def named(match: re.Match[str]) -> str:
        month = _MONTH_BY_NAME[match["month"]]
        return _say_date(month, int(match["day"]), match["year"], day_first) or match[0]

    return [_Rule(_ISO_DATE, iso), _Rule(_SLASH_DATE, slashed), _Rule(_MONTH_DAY, named), _Rule(_DAY_MONTH, named)]


# --- times ----------------------------------------------------------------------------------------------------------

_MERIDIEM = r"(?P<meridiem>[AaPp])(?:\.[Mm]\.|[Mm]\b)"
_CLOCK = re.compile(rf"(?<![\w:.])(?P<hour>[0-9]{{1,2}}):(?P<minute>[0-9]{{2}})(?![\w:]|\.[0-9])(?:\s?{_MERIDIEM})?")
_HOUR = re.compile(rf"(?<![\w:.,])(?P<hour>[0-9]{{1,2}})\s?{_MERIDIEM}")


def _say_time(match: re.Match[str]) -> str:
    hour = int(match["hour"])
    minute = int(match.groupdict().get("minute") or 0)
    meridiem = match["meridiem"]
    if hour > 23 or minute > 59 or (meridiem and not 1 <= hour <= 12):
        return match[0]
    words = numbers.cardinal(str(hour))
    if minute:
        words += f" oh {numbers.cardinal(str(minute))}" if minute < 10 else f" {numbers.cardinal(str(minute))}"
    elif not meridiem:
        words += " o'clock" if hour <= 12 else " hundred"
    if not meridiem:
        return words
    words += f" {meridiem.upper()} M"
    # "p.m." may carry the sentence's period too: keep it when a sentence follows.
    if match[0].endswith(".") and sentence_follows(match.string, match.end()):
        words += "."
    return words


# --- money ----------------------------------------------------------------------------------------------------------

_CURRENCIES = {
    # symbol: (unit, units, subunit, subunits)
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_SCALES = {
    "k": "thousand", "K": "thousand", "thousand": "thousand",
    "m": "million", "M": "million", "mn": "million", "million": "million",
    "b": "billion", "B": "billion", "bn": "billion", "billion": "billion",
    "t": "trillion", "T": "trillion", "tn": "trillion", "trillion": "trillion",
}  # fmt: skip
_SCALE_NAME = "|".join(sorted(_SCALES, key=len, reverse=True))
_MONEY = re.compile(
    rf"(?<![\w])(?P<symbol>[{''.join(_CURRENCIES)}])\s?(?P<amount>[0-9]{{1,3}}(?:,[0-9]{{3}})+|[0-9]+)"
    rf"(?:\.(?P<fraction>[0-9]+))?(?:\s?(?P<scale>{_SCALE_NAME})\b)?(?![\w]|[.,][0-9])"
)


def _say_money(match: re.Match[str]) -> str:
    unit, units, subunit, subunits = _CURRENCIES[match["symbol"]]
    amount, fraction, scale = match["amount"], match["fraction"], match["scale"]
    if scale:
        written = f"{amount}.{fraction}" if fraction else amount
        return f"{numbers.decimal(written)} {_SCALES[scale]} {units}"
    if fraction is not None and (len(fraction) > 2 or not subunit):
        return f"{numbers.decimal(f'{amount}.{fraction}')} {units}"
    whole = int(amount.replace(",", ""))
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if whole or not cents:
        parts.append(f"{numbers.cardinal(amount)} {unit if whole == 1 else units}")
    if cents:
        parts.append(f"{numbers.cardinal(str(cents))} {subunit if cents == 1 else subunits}")
    return " and ".join(parts)


# --- symbols and abbreviations ----------------------------------------------------------------------------------

_TIMES = "\N{MULTIPLICATION SIGN}"
_SYMBOLS = re.compile(
    rf"(?<=\s)[&+={_TIMES}](?=\s)"  # a & b, 2 + 2 = 4
    r"|(?:#|(?<!\S)~)(?=\.?[0-9])"  # #1, ~5
    r"|(?<!\S)@(?=\w)"  # @name
)
_SYMBOL_WORDS = {"&": "and", "+": "plus", "=": "equals", _TIMES: "times", "#": "number ", "~": "about ", "@": "at "}


def _say_symbol(match: re.Match[str]) -> str:
    return _SYMBOL_WORDS[match[0]]


# --- numbers with a meaning around them -------------------------------------------------------------------------

_RANGE = re.compile(r"(?<=[0-9])(?:-|–|\s–\s)(?=\.?[0-9])")  # noqa: RUF001  (the en dash is what ranges use)
_NEGATIVE = re.compile(r"(?<![\w.,)\]])[-−](?=\.?[0-9])")  # noqa: RUF001
_PERCENT = re.compile(rf"{_START}(?P<number>{_NUMBER})\s?%")

_UNITS = {
    # symbol: (singular, plural)
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "mi": ("mile", "miles"), "ft": ("foot", "feet"), "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "mph": ("mile per hour", "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"), "m/s": ("meter per second", "meters per second"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"), "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"),
    "L": ("liter", "liters"), "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"),
    "Mbps": ("megabit per second", "megabits per second"), "Gbps": ("gigabit per second", "gigabits per second"),
    "ms": ("millisecond", "milliseconds"), "min": ("minute", "minutes"), "h": ("hour", "hours"),
    "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"), "W": ("watt", "watts"),
    "kW": ("kilowatt", "kilowatts"), "kWh": ("kilowatt hour", "kilowatt hours"), "V": ("volt", "volts"),
    "mAh": ("milliamp hour", "milliamp hours"), "px": ("pixel", "pixels"),
}  # fmt: skip
_UNIT_NAME = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
_QUANTITY = re.compile(rf"{_START}(?P<number>{_NUMBER})(?P<space>\s?)(?P<unit>{_UNIT_NAME})(?![\w/°])")
_ORDINAL = re.compile(r"(?<![\w.,])(?P<number>[0-9]+)(?:st|nd|rd|th)\b")
_DECADE = re.compile(r"(?<![\w.,])'?(?P<number>[0-9]{1,3}0)s\b")
_FRACTION = re.compile(r"(?<![\w/.,])(?P<numerator>[0-9]{1,2})/(?P<denominator>[0-9]{1,2})(?![\w/]|[.,][0-9])")
_VERSION = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+){2,}(?![\w]|\.[0-9])")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=[0-9])|(?<=[0-9])(?=[^\W\d_])")
_BARE_NUMBER = re.compile(rf"{_START}(?:{_NUMBER}){_END}")
_LEFTOVER_DIGITS = re.compile(r"[0-9]+")
"""Digits in a shape no rule above reads ("5,000,00"): spoken all the same, so no digit reaches the engine."""


def _say_percent(match: re.Match[str]) -> str:
    return f"{numbers.decimal(match['number'])} percent"


def _say_quantity(match: re.Match[str]) -> str:
    if match["space"] and len(match["unit"]) == 1:
        return match[0]  # "Route 66 W" is a direction, "5 m" maybe a list: only "5m", "100W" are units
    singular, plural = _UNITS[match["unit"]]
    written = match["number"]
    return f"{numbers.decimal(written)} {singular if numbers.is_one(written) else plural}"


def _say_ordinal(match: re.Match[str]) -> str:
    return numbers.ordinal(match["number"])


def _say_decade(match: re.Match[str]) -> str:
    written = match["number"]
    return numbers.plural(numbers.year(written) if numbers.is_year(written) else numbers.cardinal(written))


def _say_fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match["numerator"]), int(match["denominator"])
    if not 1 <= numerator < denominator <= 10:
        return f"{numbers.cardinal(match['numerator'])} over {numbers.cardinal(match['denominator'])}"
    part = {2: "half", 4: "quarter"}.get(denominator) or numbers.ordinal(str(denominator))
    if numerator > 1:
        part = "halves" if part == "half" else numbers.plural(part)
    return f"{numbers.cardinal(str(numerator))} {part}"


def _say_version(match: re.Match[str]) -> str:
    return " point ".join(numbers.cardinal(part) for part in match[0].split("."))


def _say_number(match: re.Match[str]) -> str:
    return numbers.number(match[0])


def _rules(day_first: bool) -> list[_Rule]:
    return [
        _Rule(EMAIL, say_email),
        _Rule(URL, say_url),
        _Rule(_PHONE, _say_phone),
        *_date_rules(day_first),
        _Rule(_CLOCK, _say_time),
        _Rule(_HOUR, _say_time),
        _Rule(_MONEY, _say_money),
        _Rule(ABBREVIATION, spell_out),
        _Rule(_SYMBOLS, _say_symbol),
        _Rule(_RANGE, lambda _: " to "),
        _Rule(_NEGATIVE, lambda _: "minus "),
        _Rule(_PERCENT, _say_percent),
        _Rule(_QUANTITY, _say_quantity),
        _Rule(_ORDINAL, _say_ordinal),
        _Rule(_DECADE, _say_decade),
        _Rule(_FRACTION, _say_fraction),
        _Rule(_VERSION, _say_version),
        _Rule(_LETTER_DIGIT, lambda _: " "),
        _Rule(_BARE_NUMBER, _say_number),
        _Rule(_LEFTOVER_DIGITS, _say_number),
    ]


_RULES = {day_first: _rules(day_first) for day_first in (False, True)}


def normalize_english(text: str, *, day_first: bool = False) -> str:
    """`text` with every symbol and number the rules know spelled out; `day_first` reads 01/12/2026 as the first
    of December (British English) rather than January twelfth (American)."""
    for rule in _RULES[day_first]:
        text = rule.pattern.sub(rule.say, text)
    return text
