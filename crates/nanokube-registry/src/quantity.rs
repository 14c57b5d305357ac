//! `resource.Quantity`: the fixed-point numbers of resource requests, limits, capacity and
//! quota (`500m`, `1.5Gi`, `1e3`), parsed, compared, added and printed as apimachinery's
//! `pkg/api/resource` does.
//!
//! A quantity is `<sign?><digits>[.<digits>]<suffix>` where the suffix is a decimal SI
//! prefix (`n u m "" k M G T P E`), a binary one (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent
//! (`e3`, `E-2`). Parsing follows upstream `ParseQuantity` to the letter, quirks included:
//!
//! - values are exact, but anything finer than a nano-unit rounds *up* (away from zero) to
//!   the next nano-unit, so `0.1n` is `1n`: "if you ask for some resource you get some";
//! - binary-suffixed values are capped at 2^63-1; decimal ones are not;
//! - `.`, `1.`, `-`, `m` and `Gi` are all valid (zero or one) — the scanner treats a missing
//!   number as `0` — while surrounding whitespace is not (JSON decoding trims it first: see
//!   the `TryFrom<&k8s Quantity>` conversion).
//!
//! A [`Quantity`] remembers its [`Format`] (the kind of suffix it was written with) and prints
//! in canonical form in that format (`1.5` → `1500m`, `1536Mi` → `1536Mi`, `1024Mi` → `1Gi`),
//! except that a string already in canonical form is echoed back as written, as upstream's
//! `MarshalJSON` does.
//!
//! The value is held as an `i128` mantissa times a power of ten, so it is exact for every
//! quantity written with at most 38 significant digits; longer ones (which no resource has)
//! round up in magnitude to 38 digits.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Add, AddAssign};
use std::str::FromStr;

/// Why a string is not a quantity; the messages are upstream's (`ErrFormatWrong`,
/// `ErrNumeric`, `ErrSuffix`), which clients see in decode and validation errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// How a quantity was written, and so how it prints (upstream `resource.Format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`, `1E-3`.
    DecimalExponent,
    /// `12Mi` (12 × 2^20).
    BinarySI,
    /// `12M` (12 × 10^6), `500m`, or no suffix at all.
    #[default]
    DecimalSI,
}

/// A parsed `resource.Quantity`: an exact value plus the format it prints in.
///
/// Equality, ordering and hashing look at the value only (upstream `Cmp`): `1Gi == 1024Mi`
/// and `1 == 1000m`.
#[derive(Clone, Debug, Default)]
pub struct Quantity {
    /// Value = `mantissa` × 10^`exponent`, normalised: no trailing zero digits in the
    /// mantissa, and zero is `0 × 10^0`. `exponent >= -9` after parsing (nano precision).
    mantissa: i128,
    exponent: i32,
    format: Format,
    /// The input, when it already was in canonical form (upstream keeps it in `Quantity.s`
    /// and emits it verbatim, so `+1` or `007` round-trip unchanged).
    written: Option<Box<str>>,
}

/// The largest value a binary-suffixed quantity may have (upstream `maxAllowed`).
const MAX_ALLOWED: i128 = i64::MAX as i128;
/// Parsed quantities have nano precision.
const NANO_EXPONENT: i64 = -9;
/// Decimal digits an `i128` mantissa always holds.
const MAX_DIGITS: usize = 38;

/// Parses `s` as upstream `resource.ParseQuantity` does (no whitespace allowed).
pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    if s == "0" {
        return Ok(Quantity {
            written: Some(s.into()),
            ..Quantity::default()
        });
    }
    let parts = scan(s)?;
    let (base, exponent, mut format) = interpret_suffix(parts.suffix)?;
    let written = written_form_is_canonical(&parts, base, exponent, format).then(|| s.into());

    // The digits of num and denom as one integer: value = digits × 10^dec_exp × 2^bin_exp.
    let all_digits = format!("{}{}", parts.num, parts.denom);
    let mut dec_exp = -(parts.denom.len() as i64);
    let mut bin_exp = 0u32;
    match base {
        Base::Ten => dec_exp += i64::from(exponent),
        Base::Two => bin_exp = u32::try_from(exponent).map_err(|_| QuantityError::Suffix)?,
    }
    let digits = all_digits.trim_start_matches('0');
    let (mut mantissa, mut dec_exp) = if digits.is_empty() {
        (0u128, 0i64)
    } else if base == Base::Ten {
        // Round to nano precision on the digits, which keeps huge inputs exact.
        let (digits, dec_exp) = round_digits_to_nano(digits, dec_exp);
        digits_to_mantissa(&digits, dec_exp)
    } else {
        digits_to_mantissa(digits, dec_exp)
    };
    if bin_exp > 0 && mantissa != 0 {
        // Multiply by 2^bin_exp, giving up low decimal digits (rounding up) if the product
        // would not fit; only inputs of absurd length get there.
        loop {
            match 1u128
                .checked_shl(bin_exp)
                .and_then(|f| mantissa.checked_mul(f))
                .filter(|m| i128::try_from(*m).is_ok())
            {
                Some(m) => {
                    mantissa = m;
                    break;
                }
                None => {
                    mantissa = mantissa.div_ceil(10);
                    dec_exp += 1;
                }
            }
        }
        (mantissa, dec_exp) = normalise(mantissa, dec_exp);
        (mantissa, dec_exp) = round_mantissa_to_nano(mantissa, dec_exp);
        if compare_magnitudes(mantissa, dec_exp, MAX_ALLOWED as u128, 0) == Ordering::Greater {
            (mantissa, dec_exp) = normalise(MAX_ALLOWED as u128, 0);
        }
        // A fraction of a unit cannot be written with a binary suffix.
        if compare_magnitudes(mantissa, dec_exp, 1, 0) == Ordering::Less {
            format = Format::DecimalSI;
        }
    }
    let exponent = i32::try_from(dec_exp).map_err(|_| QuantityError::Numeric)?;
    let magnitude = i128::try_from(mantissa).unwrap_or(i128::MAX);
    Ok(Quantity {
        mantissa: if parts.positive {
            magnitude
        } else {
            -magnitude
        },
        exponent: if magnitude == 0 { 0 } else { exponent },
        format,
        written,
    })
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// A quantity as it arrives in an API object: upstream's `UnmarshalJSON` trims surrounding
/// whitespace before parsing.
impl TryFrom<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> for Quantity {
    type Error = QuantityError;

    fn try_from(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, Self::Error> {
        parse(q.0.trim())
    }
}

impl Quantity {
    /// The format it prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1 (upstream `Sign`).
    pub fn signum(&self) -> i32 {
        self.mantissa.signum() as i32
    }

    /// The value in whole units, rounded up in magnitude (upstream `Value()`): bytes of a
    /// memory quantity, `2` for `1.5`. Saturates at the `i128` range.
    pub fn value_ceil(&self) -> i128 {
        self.scaled_value_ceil(0)
    }

    /// The value in thousandths, rounded up in magnitude (upstream `MilliValue()`):
    /// millicores of a cpu quantity, `1` for `100u`.
    pub fn milli_value_ceil(&self) -> i128 {
        self.scaled_value_ceil(-3)
    }

    /// The value in units of 10^`scale`, rounded up in magnitude (upstream `ScaledValue`):
    /// `scaled_value_ceil(-9)` is the exact value in nano-units. Saturates at the `i128` range.
    pub fn scaled_value_ceil(&self, scale: i32) -> i128 {
        if self.mantissa == 0 {
            return 0;
        }
        let magnitude = self.mantissa.unsigned_abs();
        let shift = i64::from(self.exponent) - i64::from(scale);
        let scaled = if shift >= 0 {
            u32::try_from(shift)
                .ok()
                .and_then(|s| 10u128.checked_pow(s))
                .and_then(|f| magnitude.checked_mul(f))
                .unwrap_or(u128::MAX)
        } else {
            match u32::try_from(-shift)
                .ok()
                .and_then(|s| 10u128.checked_pow(s))
            {
                Some(divisor) => magnitude.div_ceil(divisor),
                None => 1,
            }
        };
        let scaled = i128::try_from(scaled).unwrap_or(i128::MAX);
        if self.mantissa < 0 { -scaled } else { scaled }
    }

    /// The canonical form (upstream `CanonicalizeBytes`), ignoring how it was written.
    pub fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let magnitude = self.mantissa.unsigned_abs();
        let exponent = i64::from(self.exponent);
        let mut format = self.format;
        if format == Format::BinarySI {
            // Below 1Ki, or not a whole number, a binary suffix would round: print decimal.
            let whole = if exponent >= 0
                && compare_magnitudes(magnitude, exponent, 1024, 0) != Ordering::Less
            {
                u32::try_from(exponent)
                    .ok()
                    .and_then(|e| 10u128.checked_pow(e))
                    .and_then(|f| magnitude.checked_mul(f))
            } else {
                None
            };
            match whole {
                Some(mut n) => {
                    let mut power = 0;
                    while power < BINARY_SUFFIXES.len() - 1 && n.is_multiple_of(1024) {
                        n /= 1024;
                        power += 1;
                    }
                    return format!("{sign}{n}{}", BINARY_SUFFIXES[power]);
                }
                None => format = Format::DecimalSI,
            }
        }
        // Largest exponent that is a multiple of three and keeps the mantissa whole.
        let mut digits = magnitude.to_string();
        let mut exponent = exponent;
        let pad = exponent.rem_euclid(3);
        digits.extend(std::iter::repeat_n('0', pad as usize));
        exponent -= pad;
        match format {
            Format::DecimalExponent if exponent == 0 => format!("{sign}{digits}"),
            Format::DecimalExponent => format!("{sign}{digits}e{exponent}"),
            _ => {
                if exponent > 18 {
                    // Past `E` there is no SI prefix: spell the value out in exa-units.
                    digits.extend(std::iter::repeat_n('0', (exponent - 18) as usize));
                    exponent = 18;
                }
                match DECIMAL_SUFFIXES
                    .iter()
                    .find(|(e, _)| i64::from(*e) == exponent)
                {
                    Some((_, suffix)) => format!("{sign}{digits}{suffix}"),
                    None => format!("{sign}{digits}e{exponent}"),
                }
            }
        }
    }
}

/// What a quantity serialises to: the input if it was canonical, else the canonical form.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.written {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.mantissa == other.mantissa && self.exponent == other.exponent
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Normalised, so equal values have equal parts.
        self.mantissa.hash(state);
        self.exponent.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Upstream `Cmp`: by value.
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.mantissa, other.mantissa);
        match a.signum().cmp(&b.signum()) {
            Ordering::Equal if a == 0 => Ordering::Equal,
            Ordering::Equal => {
                let by_magnitude = compare_magnitudes(
                    a.unsigned_abs(),
                    i64::from(self.exponent),
                    b.unsigned_abs(),
                    i64::from(other.exponent),
                );
                if a < 0 {
                    by_magnitude.reverse()
                } else {
                    by_magnitude
                }
            }
            by_sign => by_sign,
        }
    }
}

/// Upstream `Add`: exact; the sum keeps the left operand's format unless that is zero.
impl Add for Quantity {
    type Output = Quantity;

    fn add(mut self, rhs: Quantity) -> Quantity {
        self += rhs;
        self
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, rhs: Quantity) {
        if self.mantissa == 0 {
            self.format = rhs.format;
        }
        self.written = None;
        if rhs.mantissa == 0 {
            return;
        }
        let (e1, e2) = (i64::from(self.exponent), i64::from(rhs.exponent));
        // Exact at the finer exponent; only sums of absurd size or precision do not fit, and
        // those move to a coarser exponent, rounding the finer operand up in magnitude.
        let mut exponent = e1.min(e2);
        let mantissa = loop {
            let sum = at_exponent(self.mantissa, e1, exponent)
                .zip(at_exponent(rhs.mantissa, e2, exponent))
                .and_then(|(x, y)| x.checked_add(y));
            match sum {
                Some(sum) => break sum,
                None => exponent += 1,
            }
        };
        let (magnitude, exponent) = normalise(mantissa.unsigned_abs(), exponent);
        let magnitude = i128::try_from(magnitude).unwrap_or(i128::MAX);
        self.mantissa = if mantissa < 0 { -magnitude } else { magnitude };
        self.exponent = if magnitude == 0 {
            0
        } else {
            i32::try_from(exponent).unwrap_or(if exponent < 0 { i32::MIN } else { i32::MAX })
        };
    }
}

/// `m` × 10^`e` as a mantissa for 10^`target`: exact when `target <= e` (if it fits), else
/// rounded up in magnitude.
fn at_exponent(m: i128, e: i64, target: i64) -> Option<i128> {
    if e >= target {
        return u32::try_from(e - target)
            .ok()
            .and_then(|s| 10i128.checked_pow(s))
            .and_then(|f| m.checked_mul(f));
    }
    let magnitude = match u32::try_from(target - e)
        .ok()
        .and_then(|s| 10u128.checked_pow(s))
    {
        Some(d) => m.unsigned_abs().div_ceil(d),
        None => u128::from(m != 0),
    };
    let magnitude = i128::try_from(magnitude).ok()?;
    Some(if m < 0 { -magnitude } else { magnitude })
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::default(), |acc, q| acc + q)
    }
}

// ---------------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------------

/// A quantity string split as upstream's `parseQuantityString` splits it.
struct Parts<'a> {
    positive: bool,
    /// Integer digits without leading zeros; `"0"` when there are none.
    num: &'a str,
    /// Fraction digits, as written.
    denom: &'a str,
    suffix: &'a str,
}

fn scan(s: &str) -> Result<Parts<'_>, QuantityError> {
    let bytes = s.as_bytes();
    let end = bytes.len();
    let mut pos = 0;
    let mut positive = true;
    match bytes.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && bytes[pos] == b'0' {
        pos += 1;
    }
    let zero = Parts {
        positive,
        num: "0",
        denom: "",
        suffix: "",
    };
    if pos == end {
        return Ok(zero);
    }
    let num_start = pos;
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = match &s[num_start..pos] {
        "" => "0",
        n => n,
    };
    let mut denom = "";
    if pos < end && bytes[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
    }
    // The suffix: letters that may start one, an optional sign, then digits to the end.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < end && matches!(bytes[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != end {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    Two,
    Ten,
}

const DECIMAL_SUFFIXES: [(i32, &str); 10] = [
    (-9, "n"),
    (-6, "u"),
    (-3, "m"),
    (0, ""),
    (3, "k"),
    (6, "M"),
    (9, "G"),
    (12, "T"),
    (15, "P"),
    (18, "E"),
];

/// Index = power of 1024.
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// The base, exponent and format a suffix stands for (upstream `suffixer.interpret`).
fn interpret_suffix(suffix: &str) -> Result<(Base, i32, Format), QuantityError> {
    if let Some((e, _)) = DECIMAL_SUFFIXES.iter().find(|(_, s)| *s == suffix) {
        return Ok((Base::Ten, *e, Format::DecimalSI));
    }
    if let Some(power) = BINARY_SUFFIXES[1..].iter().position(|s| *s == suffix) {
        return Ok((Base::Two, 10 * (power as i32 + 1), Format::BinarySI));
    }
    match suffix.strip_prefix(['e', 'E']) {
        Some(exp) if !exp.is_empty() => exp
            .parse::<i32>()
            .map(|e| (Base::Ten, e, Format::DecimalExponent))
            .map_err(|_| QuantityError::Suffix),
        _ => Err(QuantityError::Suffix),
    }
}

/// Whether upstream's int64 fast path takes this input and finds it canonical, in which case
/// it keeps the string to emit verbatim.
fn written_form_is_canonical(parts: &Parts<'_>, base: Base, exponent: i32, format: Format) -> bool {
    let digits = parts.num.len() + parts.denom.len();
    match base {
        Base::Ten => {
            let scale = i64::from(exponent) - parts.denom.len() as i64;
            let shifted = format!("{}{}", parts.num, parts.denom);
            digits <= 18
                && scale >= NANO_EXPONENT
                && scale % 3 == 0
                && !shifted.ends_with("000")
                && !shifted.starts_with('0')
        }
        Base::Two => {
            // Upstream's precision estimate: 1Ki holds ~3 decimal digits, 1Mi ~6, ...
            let precision = 14 - parts.num.len() as i64 - i64::from(exponent) * 3 / 10;
            let Ok(value) = parts.num.parse::<i64>() else {
                return false;
            };
            format == Format::BinarySI
                && parts.denom.is_empty()
                && precision >= 0
                && value.checked_mul(1i64 << exponent).is_some()
                && exponent % 10 == 0
                && value & 7 != 0
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exact decimal arithmetic on (magnitude, power of ten)
// ---------------------------------------------------------------------------------------------

/// Rounds the value `digits` × 10^`exp` up to nano precision (`digits` has no leading zero).
fn round_digits_to_nano(digits: &str, exp: i64) -> (String, i64) {
    let trimmed = digits.trim_end_matches('0');
    let exp = exp + (digits.len() - trimmed.len()) as i64;
    if exp >= NANO_EXPONENT {
        return (trimmed.to_string(), exp);
    }
    let drop = usize::try_from(NANO_EXPONENT - exp).unwrap_or(usize::MAX);
    // The last digit is non-zero, so dropping any digit loses something: round up.
    if drop >= trimmed.len() {
        return ("1".to_string(), NANO_EXPONENT);
    }
    let kept = &trimmed[..trimmed.len() - drop];
    (increment_decimal(kept), NANO_EXPONENT)
}

/// `digits` + 1 as a decimal string.
fn increment_decimal(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return String::from_utf8_lossy(&out).into_owned();
        }
    }
    out.insert(0, b'1');
    String::from_utf8_lossy(&out).into_owned()
}

/// Turns decimal digits (no leading zero) into a normalised mantissa, keeping at most
/// [`MAX_DIGITS`] significant digits (rounding up in magnitude past that).
fn digits_to_mantissa(digits: &str, exp: i64) -> (u128, i64) {
    let trimmed = digits.trim_end_matches('0');
    let mut exp = exp + (digits.len() - trimmed.len()) as i64;
    let mut kept = trimmed;
    let mut round_up = false;
    if kept.len() > MAX_DIGITS {
        exp += (kept.len() - MAX_DIGITS) as i64;
        kept = &kept[..MAX_DIGITS];
        round_up = true;
    }
    let mut mantissa: u128 = 0;
    for b in kept.bytes() {
        mantissa = mantissa * 10 + u128::from(b - b'0');
    }
    if round_up {
        mantissa += 1;
    }
    normalise(mantissa, exp)
}

/// Strips trailing zero digits into the exponent; zero becomes `0 × 10^0`.
fn normalise(mut mantissa: u128, mut exp: i64) -> (u128, i64) {
    if mantissa == 0 {
        return (0, 0);
    }
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exp += 1;
    }
    (mantissa, exp)
}

/// Rounds `mantissa` × 10^`exp` up in magnitude to nano precision.
fn round_mantissa_to_nano(mantissa: u128, exp: i64) -> (u128, i64) {
    if mantissa == 0 || exp >= NANO_EXPONENT {
        return (mantissa, exp);
    }
    let rounded = match u32::try_from(NANO_EXPONENT - exp)
        .ok()
        .and_then(|s| 10u128.checked_pow(s))
    {
        Some(divisor) => mantissa.div_ceil(divisor),
        None => 1,
    };
    normalise(rounded, NANO_EXPONENT)
}

fn decimal_len(n: u128) -> i64 {
    n.checked_ilog10().map_or(1, |l| i64::from(l) + 1)
}

/// Compares `m1` × 10^`e1` with `m2` × 10^`e2` exactly (both magnitudes).
fn compare_magnitudes(m1: u128, e1: i64, m2: u128, e2: i64) -> Ordering {
    match (m1 == 0, m2 == 0) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    // The position of the leading digit decides unless it is the same for both.
    let lead = (decimal_len(m1) + e1).cmp(&(decimal_len(m2) + e2));
    if lead != Ordering::Equal {
        return lead;
    }
    // Same leading position: the exponents differ by at most the digit count of an u128.
    let widen = |m: u128, shift: i64| {
        u32::try_from(shift)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
            .and_then(|f| m.checked_mul(f))
    };
    if e1 >= e2 {
        widen(m1, e1 - e2).map_or(Ordering::Greater, |a| a.cmp(&m2))
    } else {
        widen(m2, e2 - e1).map_or(Ordering::Less, |b| m1.cmp(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// A quantity of exactly `mantissa` × 10^`exponent` in `format` (upstream's test
    /// helper `decQuantity`).
    fn dec(mantissa: i128, exponent: i32, format: Format) -> Quantity {
        let (m, e) = normalise(mantissa.unsigned_abs(), i64::from(exponent));
        let m = i128::try_from(m).expect("fits");
        Quantity {
            mantissa: if mantissa < 0 { -m } else { m },
            exponent: i32::try_from(e).expect("fits"),
            format,
            written: None,
        }
    }

    use Format::{BinarySI as Bin, DecimalExponent as Exp, DecimalSI as Si};

    /// upstream `TestQuantityParse`: value and format, for the input, its negation and an
    /// explicit `+`.
    #[test]
    fn parses_upstream_examples_to_exact_values_and_formats() {
        let table: &[(&str, Quantity)] = &[
            ("0", dec(0, 0, Si)),
            ("0n", dec(0, 0, Si)),
            ("0u", dec(0, 0, Si)),
            ("0m", dec(0, 0, Si)),
            ("0Ki", dec(0, 0, Bin)),
            ("0k", dec(0, 0, Si)),
            ("0Mi", dec(0, 0, Bin)),
            ("0M", dec(0, 0, Si)),
            ("0Gi", dec(0, 0, Bin)),
            ("0G", dec(0, 0, Si)),
            ("0Ti", dec(0, 0, Bin)),
            ("0T", dec(0, 0, Si)),
            ("1", dec(1, 0, Si)),
            ("1Ki", dec(1024, 0, Bin)),
            ("8Ki", dec(8 * 1024, 0, Bin)),
            ("7Mi", dec(7 << 20, 0, Bin)),
            ("6Gi", dec(6 << 30, 0, Bin)),
            ("5Ti", dec(5 << 40, 0, Bin)),
            ("4Pi", dec(4 << 50, 0, Bin)),
            ("3Ei", dec(3 << 60, 0, Bin)),
            ("10Ti", dec(10 << 40, 0, Bin)),
            ("100Ti", dec(100 << 40, 0, Bin)),
            ("5n", dec(5, -9, Si)),
            ("4u", dec(4, -6, Si)),
            ("3m", dec(3, -3, Si)),
            ("9", dec(9, 0, Si)),
            ("8k", dec(8, 3, Si)),
            ("50k", dec(5, 4, Si)),
            ("7M", dec(7, 6, Si)),
            ("6G", dec(6, 9, Si)),
            ("5T", dec(5, 12, Si)),
            ("40T", dec(4, 13, Si)),
            ("300T", dec(3, 14, Si)),
            ("2P", dec(2, 15, Si)),
            ("1E", dec(1, 18, Si)),
            ("1E-3", dec(1, -3, Exp)),
            ("1e3", dec(1, 3, Exp)),
            ("1E6", dec(1, 6, Exp)),
            ("1e9", dec(1, 9, Exp)),
            ("1E12", dec(1, 12, Exp)),
            ("1e15", dec(1, 15, Exp)),
            ("1E18", dec(1, 18, Exp)),
            ("1e14", dec(1, 14, Exp)),
            ("1e13", dec(1, 13, Exp)),
            ("100.035k", dec(100035, 0, Si)),
            ("0.001", dec(1, -3, Si)),
            ("0.0005k", dec(5, -1, Si)),
            ("0.005", dec(5, -3, Si)),
            ("0.05", dec(5, -2, Si)),
            ("0.5", dec(5, -1, Si)),
            ("0.00050k", dec(5, -1, Si)),
            ("0.00500", dec(5, -3, Si)),
            ("0.05000", dec(5, -2, Si)),
            ("0.50000", dec(5, -1, Si)),
            ("0.5e0", dec(5, -1, Exp)),
            ("0.5e-1", dec(5, -2, Exp)),
            ("0.5e-2", dec(5, -3, Exp)),
            ("10.035M", dec(10035, 3, Si)),
            ("1.2e3", dec(12, 2, Exp)),
            ("1.3E+6", dec(13, 5, Exp)),
            ("1.40e9", dec(14, 8, Exp)),
            ("1.53E12", dec(153, 10, Exp)),
            ("1.6e15", dec(16, 14, Exp)),
            ("1.7E18", dec(17, 17, Exp)),
            ("9.01", dec(901, -2, Si)),
            ("8.1k", dec(81, 2, Si)),
            ("7.123456M", dec(7123456, 0, Si)),
            ("6.987654321G", dec(6987654321, 0, Si)),
            ("5.444T", dec(5444, 9, Si)),
            ("40.1T", dec(401, 11, Si)),
            ("300.2T", dec(3002, 11, Si)),
            ("2.5P", dec(25, 14, Si)),
            ("1.01E", dec(101, 16, Si)),
            ("3.001n", dec(4, -9, Si)),
            ("1.1E-9", dec(2, -9, Exp)),
            ("0.0000000001", dec(1, -9, Si)),
            ("0.0000000005", dec(1, -9, Si)),
            ("0.00000000050", dec(1, -9, Si)),
            ("0.5e-9", dec(1, -9, Exp)),
            ("0.9n", dec(1, -9, Si)),
            ("0.00000012345", dec(124, -9, Si)),
            ("0.00000012354", dec(124, -9, Si)),
            ("9Ei", dec(MAX_ALLOWED, 0, Bin)),
            ("9223372036854775807Ki", dec(MAX_ALLOWED, 0, Bin)),
            ("12E", dec(12, 18, Si)),
            ("100.035Ki", dec(10243584, -2, Bin)),
            ("0.5Mi", dec(1 << 19, 0, Bin)),
            ("0.05Gi", dec(536870912, -1, Bin)),
            ("0.025Ti", dec(274877906944, -1, Bin)),
            ("0.000000000001Ki", dec(2, -9, Si)),
            (".001", dec(1, -3, Si)),
            (".0001k", dec(100, -3, Si)),
            ("1.", dec(1, 0, Si)),
            ("1.G", dec(1, 9, Si)),
        ];
        for (input, want) in table {
            let got = q(input);
            assert_eq!(&got, want, "{input}: got {got:?}");
            assert_eq!(got.format(), want.format, "{input}");

            let negative = q(&format!("-{input}"));
            assert_eq!(
                negative,
                dec(-want.mantissa, want.exponent, want.format),
                "-{input}"
            );
            assert_eq!(negative.format(), want.format, "-{input}");

            let plus = q(&format!("+{input}"));
            assert_eq!(&plus, want, "+{input}");
            assert_eq!(plus.format(), want.format, "+{input}");
        }
    }

    #[test]
    fn malformed_quantities_are_rejected_with_upstream_errors() {
        for bad in [
            "", "1.1.M", "1+1.0M", "0.1am", "aoeu", " 1", "1 ", "1x", "1.2.3", "abc", "1e1.5",
        ] {
            assert_eq!(parse(bad).err(), Some(QuantityError::Format), "{bad:?}");
        }
        for bad in [
            "0.1mi", ".5i", "1i", "-3.01i", "-3.01e-", "1e", "1e+", "1K", "1ki",
        ] {
            assert_eq!(parse(bad).err(), Some(QuantityError::Suffix), "{bad:?}");
        }
        assert_eq!(
            QuantityError::Format.to_string(),
            "quantities must match the regular expression \
             '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn a_missing_number_reads_as_zero_as_upstream_scanner_does() {
        for zero in [".", "-.", "-", "+", "m", "Gi", "e3", "00", "-0"] {
            assert!(q(zero).is_zero(), "{zero:?}");
        }
    }

    /// upstream `TestQuantityString`: the canonical form, parsing it back keeps it verbatim,
    /// and an alternate spelling canonicalises to it.
    #[test]
    fn prints_canonical_form_per_format() {
        let table: &[(Quantity, &str, &str)] = &[
            (dec(1 << 30, 0, Bin), "1Gi", "1024Mi"),
            (dec(300 << 20, 0, Bin), "300Mi", "307200Ki"),
            (dec(6 * 1024, 0, Bin), "6Ki", ""),
            (dec(1001 << 30, 0, Bin), "1001Gi", "1025024Mi"),
            (dec(1 << 40, 0, Bin), "1Ti", "1024Gi"),
            (dec(5, 0, Bin), "5", "5000m"),
            (dec(500, -3, Bin), "500m", "0.5"),
            (dec(1, 9, Si), "1G", "1000M"),
            (dec(1000, 6, Si), "1G", "0.001T"),
            (dec(1000000, 3, Si), "1G", ""),
            (dec(1000000000, 0, Si), "1G", ""),
            (dec(1, -3, Si), "1m", "1000u"),
            (dec(80, -3, Si), "80m", ""),
            (dec(1080, -3, Si), "1080m", "1.08"),
            (dec(108, -2, Si), "1080m", "1080000000n"),
            (dec(10800, -4, Si), "1080m", ""),
            (dec(300, 6, Si), "300M", ""),
            (dec(1, 12, Si), "1T", ""),
            (dec(1234567, 6, Si), "1234567M", ""),
            (dec(1234567, -3, Bin), "1234567m", ""),
            (dec(3, 3, Si), "3k", ""),
            (dec(1025, 0, Bin), "1025", ""),
            (dec(0, 0, Si), "0", ""),
            (dec(0, 0, Bin), "0", ""),
            (dec(1, 9, Exp), "1e9", ".001e12"),
            (dec(1, -3, Exp), "1e-3", "0.001e0"),
            (dec(1, -9, Exp), "1e-9", "1000e-12"),
            (dec(80, -3, Exp), "80e-3", ""),
            (dec(300, 6, Exp), "300e6", ""),
            (dec(1, 12, Exp), "1e12", ""),
            (dec(1, 3, Exp), "1e3", ""),
            (dec(3, 3, Exp), "3e3", ""),
            (dec(0, 0, Exp), "0", "00"),
            (dec(1, -9, Si), "1n", ""),
            (dec(80, -9, Si), "80n", ""),
            (dec(1080, -9, Si), "1080n", ""),
            (dec(108, -8, Si), "1080n", ""),
            (dec(1, -6, Si), "1u", ""),
            (dec(80, -6, Si), "80u", ""),
            (dec(1080, -6, Si), "1080u", ""),
        ];
        for (value, canonical, alternate) in table {
            assert_eq!(value.to_string(), *canonical, "{value:?}");
            let reparsed = q(canonical);
            assert_eq!(
                reparsed.written.as_deref(),
                Some(*canonical),
                "kept {canonical}"
            );
            if !alternate.is_empty() {
                let alt = q(alternate);
                assert_eq!(alt.written, None, "{alternate} is not canonical");
                assert_eq!(alt.to_string(), *canonical, "{alternate}");
            }
            if !value.is_zero() {
                let negated = dec(-value.mantissa, value.exponent, value.format);
                assert_eq!(negated.to_string(), format!("-{canonical}"));
            }
        }
    }

    /// upstream `TestQuantityParseEmit` and `TestParseQuantity`'s reserialisations.
    #[test]
    fn parsed_quantities_reserialise_as_upstream() {
        let table = [
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("1.5", "1500m"),
            ("1.5Gi", "1536Mi"),
            ("999999999999999999", "999999999999999999"),
            ("999999999999999999.0", "999999999999999999"),
            ("999999999999999999.1", "999999999999999999100m"),
            ("9999999999999999999", "9999999999999999999"),
            ("1000000000000000000", "1E"),
            ("1.0E", "1E"),
            ("9999999999999999999000m", "9999999999999999999"),
            ("1.0000000000000000001E", "1000000000000000000100m"),
            ("1.000000000000000001E", "1000000000000000001"),
            ("10E", "10E"),
            ("10000000000000000000", "10E"),
            ("10.000000000000000001E", "10000000000000000001"),
            ("9223372036854775808.1", "9223372036854775808100m"),
            ("9Ei", "9223372036854775807"),
            ("1000E", "1000E"),
            ("+1", "+1"),
            ("007", "007"),
            ("0", "0"),
            ("-0", "0"),
        ];
        for (input, want) in table {
            assert_eq!(q(input).to_string(), want, "{input}");
            if !q(input).is_zero() && !input.starts_with(['+', '0']) {
                assert_eq!(
                    q(&format!("-{input}")).to_string(),
                    format!("-{want}"),
                    "-{input}"
                );
            }
        }
    }

    #[test]
    fn scaled_values_round_up_in_magnitude() {
        assert_eq!(q("500m").milli_value_ceil(), 500);
        assert_eq!(q("2").milli_value_ceil(), 2000);
        assert_eq!(q("1.5").milli_value_ceil(), 1500);
        assert_eq!(q(".5").milli_value_ceil(), 500);
        assert_eq!(q("128Mi").milli_value_ceil(), 128 * 1024 * 1024 * 1000);
        assert_eq!(q("1e9").milli_value_ceil(), 1_000_000_000_000);
        assert_eq!(q("1E3").milli_value_ceil(), 1_000_000);
        assert_eq!(q("1E").milli_value_ceil(), 1_000_000_000_000_000_000_000);
        assert_eq!(q("100u").milli_value_ceil(), 1);
        assert_eq!(q("1n").milli_value_ceil(), 1);
        assert_eq!(q("-1").milli_value_ceil(), -1000);
        assert_eq!(q("16310508Ki").milli_value_ceil(), 16_310_508 * 1024 * 1000);

        assert_eq!(q("1.5Gi").value_ceil(), 1_610_612_736);
        assert_eq!(q("1.5").value_ceil(), 2);
        assert_eq!(q("-1.5").value_ceil(), -2);
        assert_eq!(q("100m").value_ceil(), 1);
        assert_eq!(q("0").value_ceil(), 0);
        assert_eq!(q("1k").value_ceil(), 1000);

        assert_eq!(
            q("1.5Gi").scaled_value_ceil(-9),
            3 * (1 << 29) * 1_000_000_000
        );
        assert_eq!(q("3.001n").scaled_value_ceil(-9), 4);
        // upstream `TestScaledValue`
        assert_eq!(q("1n").scaled_value_ceil(0), 1);
        assert_eq!(q("1u").scaled_value_ceil(-9), 1000);
        assert_eq!(q("1").scaled_value_ceil(-6), 1_000_000);
        assert_eq!(q("100").scaled_value_ceil(-2), 10_000);
        assert_eq!(q("1e40").value_ceil(), i128::MAX, "saturates");
    }

    /// upstream `TestQuantityCmp`, plus equality across formats.
    #[test]
    fn comparison_is_by_value() {
        assert_eq!(q("0").cmp(&q("0")), Ordering::Equal);
        assert_eq!(q("100m").cmp(&q("50m")), Ordering::Greater);
        assert_eq!(q("50m").cmp(&q("100m")), Ordering::Less);
        assert_eq!(q("10000T").cmp(&q("100Gi")), Ordering::Greater);
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1e3"), q("1k"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("1n") < q("1u"));
        assert!(q("999999999999999999999999999999") > q("1E"));
        assert!(q("1e100") > q("999999999999999999999999999999"));
    }

    #[test]
    fn sums_are_exact_and_keep_the_first_nonzero_format() {
        let sum = q("1Gi") + q("512Mi");
        assert_eq!(sum, q("1.5Gi"));
        assert_eq!(sum.to_string(), "1536Mi");
        let sum = q("0") + q("1Ki");
        assert_eq!(
            sum.format(),
            Format::BinarySI,
            "adding to zero takes the other format"
        );
        let sum = q("100m") + q("1Ki");
        assert_eq!(sum.format(), Format::DecimalSI);
        assert_eq!(sum.to_string(), "1024100m");
        let total: Quantity = ["100m", "200m", "1n"].iter().map(|s| q(s)).sum();
        assert_eq!(total.to_string(), "300000001n");
        assert_eq!((q("1") + q("-1")).to_string(), "0");
        let huge = q("1e30") + q("1n");
        assert!(
            huge > q("1e30") && huge <= q("1e30") + q("10n"),
            "past i128 precision rounds up"
        );
    }

    #[test]
    fn api_quantities_are_trimmed_like_json_decoding() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Api;
        assert_eq!(Quantity::try_from(&Api(" 1Gi ".into())), Ok(q("1Gi")));
        assert_eq!(
            Quantity::try_from(&Api("x".into())),
            Err(QuantityError::Format)
        );
    }

    #[test]
    fn very_long_inputs_stay_exact_where_they_can() {
        let long = format!("1{}", "0".repeat(60));
        assert_eq!(q(&long), dec(1, 60, Si));
        let tiny = format!("0.{}1", "0".repeat(60));
        assert_eq!(q(&tiny), dec(1, -9, Si), "rounds up to one nano-unit");
        let long_binary = format!("0.{}Ki", "9".repeat(40));
        assert_eq!(
            q(&long_binary),
            q("1Ki"),
            "0.999…Ki rounds up to 1024 at nano precision"
        );
        let many = "1234567890".repeat(5);
        assert!(q(&many) > q(&many[..49]));
    }
}
