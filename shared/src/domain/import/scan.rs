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

/// Past this, a row is no row someone meant: a quote never closed reads the
/// rest of the file into one cell. Reading stops there, so memory stays flat.
pub const MAX_ROW_BYTES: u64 = 1024 * 1024;

#[derive(Debug, PartialEq)]
pub struct Scan {
    pub headers: Vec<String>,
    pub rows: u64,
    pub chunks: Vec<ChunkPlan>,
    /// Where the last row starts (object offset) and its file line: a quote
    /// left open there would have read the rest of the file into it.
    pub last_row: Option<(u64, u64)>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ScanError {
    #[error("the file is empty")]
    Empty,
    /// Found bytes that are not UTF-8: read it again as another encoding.
    #[error("the file is not UTF-8 (line {0})")]
    NotUtf8(u64),
    #[error("the row from line {0} on is longer than 1 MiB: most likely a quote (\") there is never closed; close it or remove it")]
    RowTooLong(u64),
    #[error("the quote (\") opened in the row on line {0} is never closed, so every line after it was read into that row; close it or remove it")]
    OpenQuote(u64),
    #[error("could not read the file: {0}")]
    Read(String),
}

/// A first line such as `sep=;`, Excel's note of the delimiter: not the header.
pub fn is_excel_separator(record: &csv::ByteRecord) -> bool {
    let sep = |f: &[u8]| f.len() == 4 && f[..3].eq_ignore_ascii_case(b"sep") && f[3] == b'=';
    match record.len() {
        1 => record[0].len() == 5 && sep(&record[0][..4]),
        2 => sep(&record[0]) && record[1].is_empty(),
        _ => false,
    }
}

/// Whether `raw`, a file's last row as written, ends inside a quoted cell
/// (read as the CSV reader reads: `""` is a quote inside quotes, a quote
/// after other text in a cell is just a character).
pub fn ends_in_open_quote(raw: &[u8], delimiter: u8) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        CellStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let end = raw.iter().fold(At::CellStart, |at, &b| match (at, b) {
        (At::Quoted, b'"') => At::QuoteInQuoted,
        (At::Quoted, _) => At::Quoted,
        (At::QuoteInQuoted | At::CellStart, b'"') => At::Quoted,
        (_, b'\n' | b'\r') => At::CellStart,
        (_, b) if b == delimiter => At::CellStart,
        _ => At::Unquoted,
    });
    end == At::Quoted
}

/// Fails a read once the row being read passes `MAX_ROW_BYTES`.
struct RowBound<R> {
    inner: R,
    read: u64,
    row_start: u64,
    over: bool,
}

impl<R: Read> Read for RowBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read - self.row_start > MAX_ROW_BYTES {
            self.over = true;
            return Err(std::io::Error::other("row too long"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
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
    let bounded = RowBound {
        inner: input,
        read: 0,
        row_start: 0,
        over: false,
    };
    let mut rdr = reader(bounded, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut headers = None;
    let mut chunks: Vec<ChunkPlan> = Vec::new();
    let mut current: Option<ChunkPlan> = None;
    let mut rows = 0u64;
    let mut last_row = None;
    // Where the record being read starts: the reader's position is past it
    // once a read fails.
    let mut next_line = 1;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) if rdr.get_ref().over => return Err(ScanError::RowTooLong(next_line)),
            Err(e) => return Err(ScanError::Read(e.to_string())),
        }
        let next = rdr.position().clone();
        rdr.get_mut().row_start = next.byte();
        next_line = next.line();
        if is_blank(&record) {
            continue;
        }
        let pos = record.position().cloned().unwrap_or_else(csv::Position::new);
        if std::str::from_utf8(record.as_slice()).is_err() {
            return Err(ScanError::NotUtf8(pos.line()));
        }
        if headers.is_none() {
            if pos.line() == 1 && is_excel_separator(&record) {
                continue;
            }
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
        last_row = Some((start, pos.line()));
    }
    let headers = headers.ok_or(ScanError::Empty)?;
    if let Some(mut last) = current {
        last.end = base + rdr.position().byte();
        chunks.push(last);
    }
    Ok(Scan {
        headers,
        rows,
        chunks,
        last_row,
    })
}

/// Reads a chunk's rows one at a time into records the caller keeps, so a
/// worker holds one batch of rows, never the whole chunk.
pub struct ChunkRows<'a> {
    rdr: csv::Reader<&'a [u8]>,
    bytes: &'a [u8],
    /// The file line of the byte at `counted`.
    line: u64,
    counted: usize,
}

impl<'a> ChunkRows<'a> {
    /// `first_line`: the file line of the chunk's first byte.
    pub fn new(bytes: &'a [u8], delimiter: u8, first_line: u64) -> Self {
        ChunkRows {
            rdr: reader(bytes, delimiter),
            bytes,
            line: first_line,
            counted: 0,
        }
    }

    /// The next row into `record`, and the file line it starts on; `None`
    /// at the end of the chunk.
    pub fn read(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>, ScanError> {
        loop {
            match self.rdr.read_record(record) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    return Err(match e.kind() {
                        csv::ErrorKind::Utf8 { pos: Some(pos), .. } => ScanError::NotUtf8(self.line_at(pos.byte())),
                        _ => ScanError::Read(e.to_string()),
                    })
                }
            }
            if !is_blank(record.as_byte_record()) {
                return Ok(Some(self.line_at(record.position().map_or(0, |p| p.byte()))));
            }
        }
    }

    /// The file line of the record the reader resumed at `byte` for.
    fn line_at(&mut self, byte: u64) -> u64 {
        // A record's position is where the reader resumed, before any blank
        // lines it skipped: count lines up to its first real byte.
        let bytes = self.bytes;
        let from = (byte as usize).min(bytes.len());
        let start = from
            + bytes[from..]
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
        self.line += bytes[self.counted..start].iter().filter(|b| **b == b'\n').count() as u64;
        self.counted = start;
        self.line
    }

    /// Fills `batch` from the front; how many rows it now holds (fewer than
    /// its length only at the end of the chunk). The records' buffers are
    /// reused from one batch to the next.
    pub fn fill(&mut self, batch: &mut [(u64, csv::StringRecord)]) -> Result<usize, ScanError> {
        for (n, (line, record)) in batch.iter_mut().enumerate() {
            match self.read(record)? {
                Some(l) => *line = l,
                None => return Ok(n),
            }
        }
        Ok(batch.len())
    }
}

/// All of a chunk's rows: (file line the row starts on, cells).
pub fn chunk_rows(bytes: &[u8], delimiter: u8, first_line: u64) -> Result<Vec<(u64, csv::StringRecord)>, ScanError> {
    let mut rows = ChunkRows::new(bytes, delimiter, first_line);
    let mut all = Vec::new();
    let mut record = csv::StringRecord::new();
    while let Some(line) = rows.read(&mut record)? {
        all.push((line, record.clone()));
    }
    Ok(all)
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
    fn batches_refilled_in_place_read_the_same_rows() {
        let file = "h,n\n\na,\"1\n2\"\nb,22222222222\n,\nc,3\n\nd,4\ne,5\n";
        let all = chunk_rows(file.as_bytes(), b',', 1).unwrap();
        let mut reader = ChunkRows::new(file.as_bytes(), b',', 1);
        let mut batch = vec![(0, csv::StringRecord::new()); 2];
        let mut read = Vec::new();
        loop {
            let n = reader.fill(&mut batch).unwrap();
            read.extend_from_slice(&batch[..n]);
            if n < batch.len() {
                break;
            }
        }
        assert_eq!(read, all);
        assert_eq!(all.len(), 6, "the header and five rows");
        assert_eq!(reader.fill(&mut batch).unwrap(), 0, "the end stays the end");
        let mut bad = ChunkRows::new(&b"a\n\n\xFF\n"[..], b',', 4);
        assert_eq!(bad.read(&mut batch[0].1), Ok(Some(4)));
        assert_eq!(bad.read(&mut batch[0].1), Err(ScanError::NotUtf8(6)));
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
    fn an_excel_separator_line_is_not_the_header() {
        let file = "sep=;\nemail;name\na@x.io;A\n";
        let s = scan(file.as_bytes(), b';', 0, TINY).unwrap();
        assert_eq!(
            (s.headers.clone(), s.rows),
            (vec!["email".to_string(), "name".to_string()], 1)
        );
        assert_eq!((s.chunks[0].first_line, s.last_row), (3, Some((17, 3))));
        let quoted = csv::ByteRecord::from(vec!["SEP=|"]);
        assert!(is_excel_separator(&quoted));
        for not in [vec!["sep="], vec!["sep=", "x"], vec!["email", ""], vec!["separator"]] {
            assert!(!is_excel_separator(&csv::ByteRecord::from(not.clone())), "{not:?}");
        }
    }

    #[test]
    fn a_row_past_the_limit_stops_the_scan_where_it_starts() {
        let mut file = b"email,note\na@x.io,fine\n\nb@x.io,\"never closed\n".to_vec();
        file.extend(std::iter::repeat_n(b"c@x.io,more\n", 200_000).flatten());
        assert!(file.len() as u64 > 2 * MAX_ROW_BYTES);
        let err = scan(&file[..], b',', 0, TINY).unwrap_err();
        assert_eq!(err, ScanError::RowTooLong(3), "reading resumed on line 3, after row 2");
        assert!(err.to_string().contains("never closed"));
        // A long row under the limit is fine.
        let long = format!("email,note\na@x.io,{}\n", "x".repeat(MAX_ROW_BYTES as usize / 2));
        assert_eq!(scan(long.as_bytes(), b',', 0, TINY).unwrap().rows, 1);
    }

    #[test]
    fn open_quotes_at_the_end_are_found() {
        let file = "email,note\na@x.io,\"open\nb@x.io,swallowed\n";
        let s = scan(file.as_bytes(), b',', 0, TINY).unwrap();
        assert_eq!(s.rows, 1, "the open quote read the last line into row 2");
        let (start, line) = s.last_row.unwrap();
        assert_eq!(line, 2);
        assert!(ends_in_open_quote(&file.as_bytes()[start as usize..], b','));
        for closed in ["a,\"x\"\n", "a,\"x\"\"\"\n", "a,b\"c\n", "a,\"x\"y\n", "a;\"x;y\"", ""] {
            assert!(!ends_in_open_quote(closed.as_bytes(), b';'), "{closed}");
        }
        assert!(ends_in_open_quote(b"a;\"x\"\"\n", b';'));
    }

    proptest::proptest! {
        /// The CSV reader agrees: text added after a row left open lands in
        /// its cell, and after a closed row it is a row of its own.
        #[test]
        fn open_quotes_are_found_as_the_reader_reads(raw in "[a;\"\n\r]{0,24}") {
            let mut text = raw.clone().into_bytes();
            text.extend_from_slice(b"\nzz");
            let last = reader(&text[..], b';').into_byte_records().filter_map(Result::ok).last();
            let own_row = last.is_some_and(|r| r == vec!["zz"]);
            proptest::prop_assert_eq!(ends_in_open_quote(raw.as_bytes(), b';'), !own_row);
        }
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
