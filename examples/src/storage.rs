//! A fixed-size record buffer shared with a C library through raw pointers.

pub struct Records {
    data: Vec<u8>,
    width: usize,
}

impl Records {
    pub fn new(count: usize, width: usize) -> Records {
        Records {
            data: vec![0; count * width],
            width,
        }
    }

    /// The record at `index`, if it exists.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(self.width)?;
        let end = start.checked_add(self.width)?;
        if end > self.data.len() {
            return None;
        }
        // SAFETY: start..end was checked against the buffer's length above.
        Some(unsafe { self.data.get_unchecked(start..end) })
    }

    /// The first byte of every record, without bounds checks.
    pub fn first_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() / self.width.max(1));
        let mut i = 0;
        while i < self.data.len() {
            out.push(unsafe { *self.data.get_unchecked(i) });
            i += self.width.max(1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_within_the_buffer_and_never_past_it() {
        let records = Records::new(3, 4);
        assert_eq!(records.get(2), Some(&[0u8; 4][..]));
        assert_eq!(records.get(3), None);
        assert_eq!(records.get(usize::MAX), None);
        assert_eq!(records.first_bytes(), vec![0, 0, 0]);
    }
}
