//! One printf-style conversion (`%.18e`, `%d`, `%10.4f`, `%g`, ...) as
//! NumPy's `savetxt` applies it to every value (Python's `%` operator, which
//! follows C's printf): the `fmt` of `numvault.io.to_csv` / `to_txt`.
//!
//! Supported: flags `-+ 0#`, a width, a precision, the length modifiers
//! `h l L` (ignored, as Python ignores them) and the conversions `d i u e E
//! f F g G`. Anything else (several conversions, `%s`, `%x`, a `*` width)
//! is refused by [`Printf::parse`]; `numvault.io` then falls back to NumPy.

/// A value to format: an integer (any numvault integer type or bool) or a
/// floating-point number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(i128),
    Float(f64),
}

/// A parsed format: literal text, one conversion, literal text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Printf {
    prefix: String,
    suffix: String,
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
    conv: u8,
}

/// Literal text up to the next lone `%` (with `%%` as `%`): (text, rest
/// starting at the `%`, or "").
fn literal(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut rest = s;
    loop {
        match rest.find('%') {
            None => {
                out.push_str(rest);
                return (out, "");
            }
            Some(i) => {
                out.push_str(&rest[..i]);
                if rest[i..].starts_with("%%") {
                    out.push('%');
                    rest = &rest[i + 2..];
                } else {
                    return (out, &rest[i..]);
                }
            }
        }
    }
}

impl Printf {
    /// Parse `fmt`, which must hold exactly one conversion.
    pub fn parse(fmt: &str) -> Result<Printf, String> {
        let (prefix, rest) = literal(fmt);
        let Some(spec) = rest.strip_prefix('%') else {
            return Err(format!("format {fmt:?} has no conversion"));
        };
        let b = spec.as_bytes();
        let mut i = 0;
        let mut p = Printf {
            prefix,
            suffix: String::new(),
            left: false,
            plus: false,
            space: false,
            zero: false,
            alt: false,
            width: 0,
            precision: None,
            conv: 0,
        };
        while let Some(&c) = b.get(i) {
            match c {
                b'-' => p.left = true,
                b'+' => p.plus = true,
                b' ' => p.space = true,
                b'0' => p.zero = true,
                b'#' => p.alt = true,
                _ => break,
            }
            i += 1;
        }
        let digits = |i: &mut usize| -> Result<Option<usize>, String> {
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            if *i == start {
                return Ok(None);
            }
            spec[start..*i]
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 1000)
                .map(Some)
                .ok_or_else(|| format!("format {fmt:?}: width or precision too large"))
        };
        p.width = digits(&mut i)?.unwrap_or(0);
        if b.get(i) == Some(&b'.') {
            i += 1;
            p.precision = Some(digits(&mut i)?.unwrap_or(0));
        }
        while matches!(b.get(i), Some(b'h' | b'l' | b'L')) {
            i += 1;
        }
        match b.get(i) {
            Some(&c @ (b'd' | b'i' | b'u' | b'e' | b'E' | b'f' | b'F' | b'g' | b'G')) => p.conv = c,
            _ => {
                return Err(format!(
                    "format {fmt:?}: only one %d, %i, %u, %e, %E, %f, %F, %g or %G conversion \
                     is supported here"
                ))
            }
        }
        let (suffix, more) = literal(&spec[i + 1..]);
        if !more.is_empty() {
            return Err(format!("format {fmt:?} has more than one conversion"));
        }
        p.suffix = suffix;
        Ok(p)
    }

    /// Append `v` formatted to `out` (NaN and infinity zero-padded like
    /// Python does). Err for NaN or infinity with an integer conversion
    /// (Python refuses those too).
    pub fn write(&self, v: Value, out: &mut String) -> Result<(), String> {
        out.push_str(&self.prefix);
        let (neg, body) = match self.conv {
            b'd' | b'i' | b'u' => {
                let (neg, mut d) = match v {
                    Value::Int(x) => (x < 0, x.unsigned_abs().to_string()),
                    // The exact decimal of the truncated value, at any size.
                    Value::Float(f) if f.is_finite() => {
                        let t = f.trunc();
                        (t < 0.0, format!("{:.0}", t.abs()))
                    }
                    Value::Float(f) => {
                        return Err(format!("cannot format {f} with the integer conversion %d"))
                    }
                };
                if let Some(p) = self.precision {
                    while d.len() < p {
                        d.insert(0, '0');
                    }
                }
                (neg, d)
            }
            conv => {
                let f = match v {
                    Value::Int(x) => x as f64,
                    Value::Float(f) => f,
                };
                let upper = conv.is_ascii_uppercase();
                let body = if f.is_nan() {
                    "nan".to_string()
                } else if f.is_infinite() {
                    "inf".to_string()
                } else {
                    self.float_body(f.abs(), conv.to_ascii_lowercase())
                };
                let body = if upper {
                    body.to_ascii_uppercase()
                } else {
                    body
                };
                (f.is_sign_negative() && !f.is_nan(), body)
            }
        };
        let sign = if neg {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        };
        let len = sign.len() + body.len();
        let pad = self.width.saturating_sub(len);
        if self.left {
            out.push_str(sign);
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if self.zero {
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(&body);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(sign);
            out.push_str(&body);
        }
        out.push_str(&self.suffix);
        Ok(())
    }

    /// `a` (finite, not negative) as %e, %f or %g without the sign.
    fn float_body(&self, a: f64, conv: u8) -> String {
        let p = self.precision.unwrap_or(6);
        match conv {
            b'e' => self.alt_point(exp_form(a, p), p),
            b'f' => self.alt_point(format!("{a:.p$}"), p),
            _ => {
                let pp = p.max(1);
                let x = if a == 0.0 {
                    0
                } else {
                    exp_of(&exp_form(a, pp - 1))
                };
                let s = if x >= -4 && x < pp as i64 {
                    let prec = (pp as i64 - 1 - x).max(0) as usize;
                    format!("{a:.prec$}")
                } else {
                    exp_form(a, pp - 1)
                };
                if self.alt {
                    return self.alt_point(s, 0);
                }
                // Trailing zeros of the fraction go, and a bare point.
                let (mant, exp) = match s.find('e') {
                    Some(i) => (&s[..i], &s[i..]),
                    None => (s.as_str(), ""),
                };
                let mant = if mant.contains('.') {
                    mant.trim_end_matches('0').trim_end_matches('.')
                } else {
                    mant
                };
                format!("{mant}{exp}")
            }
        }
    }

    /// With `#` and precision 0, keep the decimal point.
    fn alt_point(&self, s: String, p: usize) -> String {
        if !self.alt || p != 0 || s.contains('.') {
            return s;
        }
        match s.find('e') {
            Some(i) => format!("{}.{}", &s[..i], &s[i..]),
            None => format!("{s}."),
        }
    }
}

/// C's %e: `d.ddde+XX` (at least two exponent digits).
fn exp_form(a: f64, p: usize) -> String {
    let s = format!("{a:.p$e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let e: i64 = e.parse().unwrap_or(0);
            let sign = if e < 0 { '-' } else { '+' };
            format!("{m}e{sign}{:02}", e.unsigned_abs())
        }
        None => s,
    }
}

/// The exponent of a string made by [`exp_form`].
fn exp_of(s: &str) -> i64 {
    s.split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0)
}
