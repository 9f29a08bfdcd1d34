//! Content-defined chunking: FastCDC (2020) over a gear table keyed from the
//! backup key, so chunk boundaries, like chunk ids, reveal nothing to anyone
//! without the key (a public gear table would let the storage provider
//! fingerprint known files by their chunk sizes).

use std::io::{self, Read};

use arca_crypto::SubKey;
use fastcdc::v2020::{
    AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN, Normalization,
    cut_gear, select_masks,
};
use serde::{Deserialize, Serialize};

/// Chunk size bounds, recorded in the repository config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    /// 64 KiB / 256 KiB / 1 MiB. A day of new messages touches scattered
    /// 4 KiB pages of a SQLite database; smaller chunks upload less of it,
    /// while 256 KiB keeps the index of a multi-GB backup to a few
    /// megabytes.
    fn default() -> Self {
        Self {
            min_size: 64 * 1024,
            avg_size: 256 * 1024,
            max_size: 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Rejects sizes FastCDC cannot work with. Its limits are not just
    /// advice: `select_masks` indexes a 26-entry table by log2 of the
    /// average, so an average above 4 MiB would panic, and a config read
    /// from storage must never be able to do that.
    pub fn validate(&self) -> Result<(), String> {
        let (min, avg, max) = (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        );
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0
            && min < avg
            && avg < max;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid chunker sizes {self:?}: sizes must be even, min < avg < max, \
                 min {MINIMUM_MIN}..={MINIMUM_MAX}, avg {AVERAGE_MIN}..={AVERAGE_MAX}, \
                 max {MAXIMUM_MIN}..={MAXIMUM_MAX} bytes"
            ))
        }
    }
}

/// Splits byte streams into chunks; one per repository.
#[derive(Clone)]
pub struct Chunker {
    params: ChunkerParams,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    mask_s: u64,
    mask_l: u64,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunker({:?}, gear: REDACTED)", self.params)
    }
}

/// Where chunks end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundaries {
    /// FastCDC with the keyed gear table: survives inserts and deletes.
    ContentDefined,
    /// Every `n` bytes. SQLite never shifts bytes: it rewrites pages in
    /// place and appends new ones, so chunks aligned to page groups turn a
    /// day of scattered page updates into uploads of just those groups,
    /// where content-defined chunks would re-upload ~256 KiB around each.
    Fixed(usize),
}

/// Bytes per chunk of a SQLite database (a group of pages). Smaller uploads
/// less after scattered updates; larger keeps a big database's content list
/// (32 bytes per chunk, rewritten when the file changes) short. 16 KiB: a
/// 4 GiB database lists 256 Ki chunks.
pub const SQLITE_GROUP: usize = 16 * 1024;

/// The page size of a SQLite database file, from its 100-byte header.
fn sqlite_page_size(head: &[u8]) -> Option<usize> {
    if head.len() < 18 || &head[..16] != b"SQLite format 3\0" {
        return None;
    }
    let raw = u16::from_be_bytes([head[16], head[17]]) as usize;
    let page = if raw == 1 { 65536 } else { raw };
    (page.is_power_of_two() && (512..=65536).contains(&page)).then_some(page)
}

/// How much is read from a file at a time.
const READ_SIZE: usize = 4 * 1024 * 1024;

impl Chunker {
    /// The chunker of the repository whose gear key is `gear_key`. The table
    /// is the first 2048 bytes of the key's BLAKE3 XOF, as 256 little-endian
    /// u64 values.
    pub fn new(gear_key: &SubKey, params: ChunkerParams) -> Self {
        let mut bytes = [0u8; 256 * 8];
        gear_key.expand(&mut bytes);
        let mut gear = Box::new([0u64; 256]);
        for (g, b) in gear.iter_mut().zip(bytes.chunks_exact(8)) {
            *g = u64::from_le_bytes(b.try_into().expect("chunks_exact(8) yields 8 bytes"));
        }
        let mut gear_ls = Box::new([0u64; 256]);
        for (l, g) in gear_ls.iter_mut().zip(gear.iter()) {
            *l = g << 1;
        }
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, Normalization::Level1);
        Self {
            params,
            gear,
            gear_ls,
            mask_s,
            mask_l,
        }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Length of the first chunk of `data`, given that `data` is the whole
    /// rest of the stream or at least `max_size` long.
    pub fn cut(&self, data: &[u8]) -> usize {
        let p = self.params;
        cut_gear(
            data,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear[..],
            &self.gear_ls[..],
        )
        .1
    }

    /// How to split a file whose first bytes are `head`: SQLite databases at
    /// page-group boundaries, everything else by content.
    pub fn boundaries_for(head: &[u8]) -> Boundaries {
        match sqlite_page_size(head) {
            Some(page) => Boundaries::Fixed(page.max(SQLITE_GROUP)),
            None => Boundaries::ContentDefined,
        }
    }

    /// Reads `source` to its end and calls `each` with every chunk in order.
    /// One read buffer is reused for the whole stream, so memory stays at
    /// [`READ_SIZE`] however large the file; `each` copies what it keeps.
    /// Returns the number of bytes read.
    pub fn chunk_stream<R: Read, E: From<io::Error>>(
        &self,
        mut source: R,
        boundaries: Boundaries,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let max = self.params.max_size as usize;
        let mut buf = vec![0u8; READ_SIZE.max(2 * max)];
        let (mut start, mut end) = (0usize, 0usize);
        let mut eof = false;
        let mut total = 0u64;
        loop {
            if !eof && end - start < max {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
                while !eof && end < buf.len() {
                    match source.read(&mut buf[end..]) {
                        Ok(0) => eof = true,
                        Ok(n) => {
                            end += n;
                            total += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if start == end {
                return Ok(total);
            }
            let len = match boundaries {
                Boundaries::ContentDefined => self.cut(&buf[start..end]),
                Boundaries::Fixed(n) => n.min(end - start),
            };
            each(&buf[start..start + len])?;
            start += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_crypto::{BackupKey, Purpose};

    fn chunker(seed: u8) -> Chunker {
        let key = BackupKey::from_bytes([seed; 32]).derive(Purpose::ChunkerGear);
        Chunker::new(&key, ChunkerParams::default())
    }

    fn pseudo_random(len: usize, seed: u8) -> Vec<u8> {
        let mut out = vec![0u8; len];
        BackupKey::from_bytes([seed; 32])
            .derive(Purpose::DataId)
            .expand(&mut out);
        out
    }

    fn lengths(c: &Chunker, data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        c.chunk_stream::<_, io::Error>(data, Boundaries::ContentDefined, |b| {
            out.push(b.len());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn chunks_cover_the_input_within_bounds() {
        let c = chunker(1);
        let data = pseudo_random(20 << 20, 9);
        let lens = lengths(&c, &data);
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        let p = c.params();
        for l in &lens[..lens.len() - 1] {
            assert!(*l >= p.min_size as usize && *l <= p.max_size as usize);
        }
        let avg = data.len() / lens.len();
        assert!(avg > 128 << 10 && avg < 512 << 10, "average {avg}");
    }

    #[test]
    fn boundaries_resynchronise_after_an_insert() {
        let c = chunker(1);
        let data = pseudo_random(8 << 20, 3);
        let mut edited = data.clone();
        edited.splice(3_000_000..3_000_000, b"a new message".iter().copied());
        let a = lengths(&c, &data);
        let b = lengths(&c, &edited);
        let tail = |v: &[usize]| v[v.len() - 5..].to_vec();
        assert_eq!(tail(&a), tail(&b), "chunks after the edit are the same");
    }

    #[test]
    fn boundaries_depend_on_the_key() {
        let data = pseudo_random(8 << 20, 3);
        assert_ne!(lengths(&chunker(1), &data), lengths(&chunker(2), &data));
    }

    #[test]
    fn sqlite_databases_are_cut_at_page_groups() {
        let mut db = b"SQLite format 3\0\x10\x00".to_vec();
        db.resize(100_000, 7);
        assert_eq!(
            Chunker::boundaries_for(&db),
            Boundaries::Fixed(SQLITE_GROUP)
        );
        db[16..18].copy_from_slice(&[0, 1]); // 65536-byte pages
        assert_eq!(Chunker::boundaries_for(&db), Boundaries::Fixed(65536));
        db[16..18].copy_from_slice(&[0x03, 0x00]); // not a power of two
        assert_eq!(Chunker::boundaries_for(&db), Boundaries::ContentDefined);
        assert_eq!(
            Chunker::boundaries_for(b"SQLite"),
            Boundaries::ContentDefined
        );
        let c = chunker(1);
        let mut out = Vec::new();
        c.chunk_stream::<_, io::Error>(&db[..], Boundaries::Fixed(SQLITE_GROUP), |b| {
            out.push(b.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(out, vec![16384, 16384, 16384, 16384, 16384, 16384, 1696]);
    }

    #[test]
    fn sizes_beyond_fastcdc_limits_are_rejected() {
        let ok = ChunkerParams::default();
        assert!(ok.validate().is_ok());
        let largest = ChunkerParams {
            min_size: 1 << 20,
            avg_size: 1 << 22,
            max_size: 16 << 20,
        };
        assert!(largest.validate().is_ok());
        Chunker::new(&BackupKey::generate().derive(Purpose::ChunkerGear), largest);
        for bad in [
            ChunkerParams {
                avg_size: (1 << 22) + 2,
                max_size: 16 << 20,
                ..ok
            },
            ChunkerParams {
                avg_size: 1 << 30,
                max_size: 1 << 31,
                ..ok
            },
            ChunkerParams {
                max_size: (16 << 20) + 2,
                ..ok
            },
            ChunkerParams { min_size: 32, ..ok },
            ChunkerParams {
                min_size: 64,
                avg_size: 128,
                ..ok
            },
            ChunkerParams {
                avg_size: ok.max_size,
                ..ok
            },
            ChunkerParams {
                avg_size: ok.avg_size + 1,
                ..ok
            },
        ] {
            let err = bad.validate().unwrap_err();
            assert!(err.contains("invalid chunker sizes"), "{err}");
        }
    }

    #[test]
    fn tiny_and_empty_streams() {
        let c = chunker(1);
        assert!(lengths(&c, &[]).is_empty());
        assert_eq!(lengths(&c, b"x"), vec![1]);
    }
}
