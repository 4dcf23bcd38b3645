//! YAML safety checks run before any manifest or provider file is decoded (alias expansion and
//! nesting depth).

use std::cell::Cell;

use serde::de::{self, DeserializeSeed, IgnoredAny, Visitor};

/// Go yaml.v3's wording for an alias bomb.
const EXCESSIVE_ALIASING: &str = "yaml: document contains excessive aliasing";

/// Refuses documents whose aliases expand far beyond the input: serde_norway's own limit counts
/// alias jumps, not bytes, so one big scalar referenced many times would be copied each time.
/// The expanded size (scalar bytes + 8 per node) may be at most `16 × input + 1 MiB`; a document
/// without aliases is always well within. Other errors are left to the real parse.
pub(crate) fn check_aliasing(bytes: &[u8]) -> Result<(), serde_norway::Error> {
    check_depth(bytes)?;
    if !bytes.contains(&b'*') {
        return Ok(());
    }
    let budget = Cell::new(
        (bytes.len() as u64)
            .saturating_mul(16)
            .saturating_add(1 << 20),
    );
    let exceeded = Cell::new(false);
    let seed = Measure {
        budget: &budget,
        exceeded: &exceeded,
    };
    let _ = seed.deserialize(serde_norway::Deserializer::from_slice(bytes));
    if exceeded.get() {
        return Err(de::Error::custom(EXCESSIVE_ALIASING));
    }
    Ok(())
}

/// Go yaml.v3's flow-nesting limit. libyaml-style scanners are quadratic in the flow depth
/// (200k `[` take minutes), and serde refuses anything deeper than 128 anyway.
const MAX_DEPTH: usize = 10_000;

/// Refuses more than [`MAX_DEPTH`] unclosed `[`/`{` before the parser sees them. Counting is
/// lexical (brackets in scalars count too), so only absurd documents are refused.
fn check_depth(bytes: &[u8]) -> Result<(), serde_norway::Error> {
    let mut depth = 0usize;
    for b in bytes {
        match b {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => continue,
        }
        if depth > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "yaml: exceeded max depth of {MAX_DEPTH}"
            )));
        }
    }
    Ok(())
}

/// Caps an error text (serde quotes whole scalars, which can be megabytes) like Go keeps it short.
pub(crate) fn short(msg: String) -> String {
    const MAX: usize = 512;
    if msg.len() <= MAX {
        return msg;
    }
    let cut = |at: usize| {
        (0..=at)
            .rev()
            .find(|&i| msg.is_char_boundary(i))
            .unwrap_or(0)
    };
    let head = cut(MAX / 2);
    let tail = (msg.len() - MAX / 4..msg.len())
        .find(|&i| msg.is_char_boundary(i))
        .unwrap_or(msg.len());
    format!("{}...{}", &msg[..head], &msg[tail..])
}

/// Walks a document without keeping it, charging its expanded size against a budget.
#[derive(Clone, Copy)]
struct Measure<'a> {
    budget: &'a Cell<u64>,
    exceeded: &'a Cell<bool>,
}

const NODE_COST: u64 = 8;

impl Measure<'_> {
    fn charge<E: de::Error>(self, bytes: usize) -> Result<(), E> {
        let cost = NODE_COST.saturating_add(bytes as u64);
        match self.budget.get().checked_sub(cost) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom(EXCESSIVE_ALIASING))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Measure<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Measure<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.charge(v.len())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.charge(v.len())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.charge(0)?;
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.charge(0)?;
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.charge(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.charge(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        self.charge(0)?;
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}
