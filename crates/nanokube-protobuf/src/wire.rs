//! The protobuf wire format: varints, fixed-width numbers and length-delimited fields.
//! See <https://protobuf.dev/programming-guides/encoding/>.

use crate::ProtobufError;

/// How a field's value is laid out on the wire (the low 3 bits of its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    LengthDelimited,
    Fixed32,
}

impl WireType {
    pub(crate) fn number(self) -> u8 {
        match self {
            Self::Varint => 0,
            Self::Fixed64 => 1,
            Self::LengthDelimited => 2,
            Self::Fixed32 => 5,
        }
    }
}

/// A field's raw value, not yet interpreted by its declared type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

impl RawValue<'_> {
    pub(crate) fn wire_type(&self) -> WireType {
        match self {
            Self::Varint(_) => WireType::Varint,
            Self::Fixed64(_) => WireType::Fixed64,
            Self::Fixed32 => WireType::Fixed32,
            Self::Bytes(_) => WireType::LengthDelimited,
        }
    }
}

/// Reads one message's bytes front to back.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// A base-128 varint. Negative `int32`/`int64` values take all 10 bytes.
    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() >= 10 {
            Err(ProtobufError::VarintTooLong)
        } else {
            Err(ProtobufError::Truncated("varint"))
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtobufError> {
        if self.buf.len() < n {
            return Err(ProtobufError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let bytes = self.take(8, "64-bit fixed-width value")?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    fn fixed32(&mut self) -> Result<u32, ProtobufError> {
        let bytes = self.take(4, "32-bit fixed-width value")?;
        let mut array = [0u8; 4];
        array.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(array))
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(n) if n <= self.buf.len() => self.take(n, "length-delimited field"),
            _ => Err(ProtobufError::LengthPastEnd {
                len,
                remaining: self.buf.len(),
            }),
        }
    }

    /// The next field: its number and raw value.
    pub(crate) fn field(&mut self) -> Result<(u32, RawValue<'a>), ProtobufError> {
        let key = self.varint()?;
        let number = key >> 3;
        let number = u32::try_from(number)
            .ok()
            .filter(|n| (1..=0x1fff_ffff).contains(n))
            .ok_or(ProtobufError::InvalidFieldNumber(number))?;
        let value = match key & 7 {
            0 => RawValue::Varint(self.varint()?),
            1 => RawValue::Fixed64(self.fixed64()?),
            2 => RawValue::Bytes(self.length_delimited()?),
            5 => {
                self.fixed32()?;
                RawValue::Fixed32
            }
            other => return Err(ProtobufError::UnsupportedWireType(other as u8)),
        };
        Ok((number, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_int32_is_a_ten_byte_varint() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        let value = Reader::new(&bytes).varint().expect("valid varint");
        assert_eq!(value as i64 as i32, -1);
    }

    #[test]
    fn eleven_byte_varint_is_rejected() {
        let bytes = [0xff; 11];
        assert!(matches!(
            Reader::new(&bytes).varint(),
            Err(ProtobufError::VarintTooLong)
        ));
    }

    #[test]
    fn truncated_varint_is_rejected() {
        assert!(matches!(
            Reader::new(&[0x80, 0x80]).varint(),
            Err(ProtobufError::Truncated(_))
        ));
    }

    #[test]
    fn length_past_end_is_rejected() {
        // field 1, length-delimited, 5 bytes, but only 2 follow.
        let bytes = [0x0a, 0x05, b'a', b'b'];
        assert!(matches!(
            Reader::new(&bytes).field(),
            Err(ProtobufError::LengthPastEnd {
                len: 5,
                remaining: 2
            })
        ));
    }

    #[test]
    fn field_number_zero_is_rejected() {
        assert!(matches!(
            Reader::new(&[0x00, 0x01]).field(),
            Err(ProtobufError::InvalidFieldNumber(0))
        ));
    }

    #[test]
    fn group_wire_type_is_rejected() {
        assert!(matches!(
            Reader::new(&[0x0b]).field(),
            Err(ProtobufError::UnsupportedWireType(3))
        ));
    }
}
