//! One pass over a whole file: the header, the row count, and the chunk
//! boundaries (whole records only), reading as it goes. The planner runs it
//! on the S3 stream; the benchmark on a file on disk.

use std::io::Read;

use super::ChunkPlan;

/// Where chunks end: after this many rows, or once this many bytes are in.
#[derive(Clone, Copy, Debug)]
pub struct ChunkLimits {
    pub rows: u64,
    pub bytes: u64,
}

pub const LIMITS: ChunkLimits = ChunkLimits {
    rows: super::CHUNK_ROWS,
    bytes: 8 * 1024 * 1024,
};

#[derive(Debug, PartialEq)]
pub struct Scan {
    pub headers: Vec<String>,
    pub rows: u64,
    pub chunks: Vec<ChunkPlan>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ScanError {
    #[error("the file is empty")]
    Empty,
    /// Found bytes that are not UTF-8: read it again as another encoding.
    #[error("the file is not UTF-8 (line {0})")]
    NotUtf8(u64),
    #[error("could not read the file: {0}")]
    Read(String),
}

/// A record with only empty fields is no row (spreadsheets leave `,,,` lines).
pub fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

pub fn reader<R: Read>(input: R, delimiter: u8) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(input)
}

/// Scans UTF-8 text whose first byte is at offset `base` of the object.
pub fn scan<R: Read>(input: R, delimiter: u8, base: u64, limits: ChunkLimits) -> Result<Scan, ScanError> {
    let mut rdr = reader(input, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut headers = None;
    let mut chunks: Vec<ChunkPlan> = Vec::new();
    let mut current: Option<ChunkPlan> = None;
    let mut rows = 0u64;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(ScanError::Read(e.to_string())),
        }
        if is_blank(&record) {
            continue;
        }
        let pos = record.position().cloned().unwrap_or_else(csv::Position::new);
        if std::str::from_utf8(record.as_slice()).is_err() {
            return Err(ScanError::NotUtf8(pos.line()));
        }
        if headers.is_none() {
            headers = Some(
                record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).trim().to_string())
                    .collect(),
            );
            continue;
        }
        let start = base + pos.byte();
        if let Some(c) = &current {
            if c.rows >= limits.rows || start - c.start >= limits.bytes {
                let mut done = current.take().expect("checked above");
                done.end = start;
                chunks.push(done);
            }
        }
        let c = current.get_or_insert_with(|| ChunkPlan {
            chunk: chunks.len() as u32,
            start,
            end: start,
            first_line: pos.line(),
            rows: 0,
        });
        c.rows += 1;
        rows += 1;
    }
    let headers = headers.ok_or(ScanError::Empty)?;
    if let Some(mut last) = current {
        last.end = base + rdr.position().byte();
        chunks.push(last);
    }
    Ok(Scan { headers, rows, chunks })
}

/// A chunk's rows: (file line the row starts on, cells). `first_line` is
/// the line of the chunk's first byte.
pub fn chunk_rows(bytes: &[u8], delimiter: u8, first_line: u64) -> Result<Vec<(u64, csv::StringRecord)>, ScanError> {
    let mut rdr = reader(bytes, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut rows = Vec::new();
    // A record's position is where the reader resumed, before any blank
    // lines it skipped: count lines up to its first real byte.
    let (mut line, mut counted) = (first_line, 0usize);
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(rows),
            Err(e) => return Err(ScanError::Read(e.to_string())),
        }
        if is_blank(&record) {
            continue;
        }
        let from = record.position().map_or(0, |p| p.byte() as usize).min(bytes.len());
        let start = from
            + bytes[from..]
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
        line += bytes[counted..start].iter().filter(|b| **b == b'\n').count() as u64;
        counted = start;
        // One record keeps a row's cells in one buffer (the text is already
        // UTF-8, so the conversion copies nothing).
        rows.push((line, csv::StringRecord::from_byte_record_lossy(record.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: ChunkLimits = ChunkLimits {
        rows: 2,
        bytes: 1 << 20,
    };

    #[test]
    fn chunks_hold_whole_records_and_every_row_once() {
        let file =
            "email,note\n\na@x.io,\"multi\nline, quoted\"\n,\nb@x.io,two\nc@x.io,three\n\nd@x.io,four\ne@x.io,five";
        let scan = scan(file.as_bytes(), b',', 0, TINY).unwrap();
        assert_eq!(scan.headers, vec!["email", "note"]);
        assert_eq!(scan.rows, 5);
        assert_eq!(scan.chunks.len(), 3);
        assert_eq!(
            scan.chunks[0].first_line, 2,
            "the chunk starts at the blank line before its first row"
        );
        assert_eq!(scan.chunks.last().unwrap().end, file.len() as u64);
        let mut all = Vec::new();
        for c in &scan.chunks {
            let rows = chunk_rows(&file.as_bytes()[c.start as usize..c.end as usize], b',', c.first_line).unwrap();
            assert_eq!(rows.len() as u64, c.rows);
            all.extend(rows);
        }
        let emails: Vec<&str> = all.iter().map(|(_, cells)| &cells[0]).collect();
        assert_eq!(emails, vec!["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"]);
        assert_eq!(&all[0].1[1], "multi\nline, quoted");
        // Line numbers are the file's: the quoted newline counts.
        assert_eq!(all.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![3, 6, 7, 9, 10]);
    }

    #[test]
    fn offsets_account_for_what_precedes_the_text() {
        let file = "email\na@x.io\n";
        let scan = scan(file.as_bytes(), b',', 3, TINY).unwrap();
        assert_eq!((scan.chunks[0].start, scan.chunks[0].end), (9, 16));
        // Windows line ends and blank lines keep line numbers right.
        let crlf = "h\r\n\r\na\r\nb\r\n";
        let s = super::scan(crlf.as_bytes(), b',', 0, TINY).unwrap();
        let c = &s.chunks[0];
        let rows = chunk_rows(&crlf.as_bytes()[c.start as usize..c.end as usize], b',', c.first_line).unwrap();
        assert_eq!(rows.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn empty_files_and_other_encodings_are_reported() {
        assert_eq!(scan("".as_bytes(), b',', 0, TINY), Err(ScanError::Empty));
        assert_eq!(scan("\n\n".as_bytes(), b',', 0, TINY), Err(ScanError::Empty));
        assert_eq!(scan(&b"name\nZo\xEB\n"[..], b',', 0, TINY), Err(ScanError::NotUtf8(2)));
        let header_only = scan("email\n".as_bytes(), b',', 0, TINY).unwrap();
        assert_eq!((header_only.rows, header_only.chunks.len()), (0, 0));
    }
}
