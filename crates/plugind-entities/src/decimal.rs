//! Decimal numbers as upstream writes them (shopspring `decimal.String()`): no exponent, no
//! trailing fractional zeros, `0` for zero. Used for declaration pricing and for the prices of
//! model results (http-api §2.5).

/// The most digits a decimal may have once written out without an exponent (the digits before
/// and after the point, leading `0` included).
///
/// Every finite `f64` fits (`f64::MAX` has 309 integer digits, the smallest subnormal 324
/// decimals), and real prices have a few dozen at most. The bound is checked before anything is
/// allocated: `1e100000000000` written out would take 100 GB.
pub const MAX_DECIMAL_DIGITS: usize = 400;

/// Why a text is not accepted as a decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    NotANumber,
    TooLong,
}

/// Canonical text of a decimal number: no exponent, no trailing fractional zeros, `0` for zero.
///
/// Refuses anything but `[+-]digits[.digits][(e|E)[+-]digits]` (surrounding spaces allowed) and
/// any value longer than [`MAX_DECIMAL_DIGITS`] written out.
pub fn canonical(input: &str) -> Result<String, DecimalError> {
    let s = input.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (
            &s[..i],
            s[i + 1..]
                .parse::<i64>()
                .map_err(|_| DecimalError::NotANumber)?,
        ),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(DecimalError::NotANumber);
    }
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return Err(DecimalError::NotANumber);
    }
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.is_empty() {
        return Ok("0".to_owned());
    }
    // value = trimmed × 10^(−scale); i128 cannot overflow with an i64 exponent and a usize length.
    let n_digits = trimmed.len() as i128;
    let scale = frac.len() as i128 - i128::from(exponent) - (significant.len() as i128 - n_digits);
    let written_len = if scale <= 0 {
        n_digits - scale
    } else if n_digits > scale {
        n_digits
    } else {
        1 + scale
    };
    if written_len > MAX_DECIMAL_DIGITS as i128 {
        return Err(DecimalError::TooLong);
    }
    // Both conversions hold: |scale| ≤ written_len ≤ MAX_DECIMAL_DIGITS.
    let shift = usize::try_from(scale.unsigned_abs()).map_err(|_| DecimalError::NotANumber)?;
    let mut out = String::with_capacity(written_len as usize + 2);
    if negative {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(trimmed);
        out.extend(std::iter::repeat_n('0', shift));
    } else if trimmed.len() > shift {
        let (a, b) = trimmed.split_at(trimmed.len() - shift);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', shift - trimmed.len()));
        out.push_str(trimmed);
    }
    Ok(out)
}
