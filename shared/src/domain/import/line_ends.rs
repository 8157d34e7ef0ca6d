//! Files saved with classic Mac line ends (a CR alone, Excel for Mac's "CSV
//! (Macintosh)"). The parser splits their rows, but every count of lines is
//! of LFs, so report lines would all read 1: such files are read with each
//! CR turned into an LF.

use std::io::Read;

/// A sample whose lines end in CR alone: it has CRs and not one LF.
pub fn cr_only(text: &str) -> bool {
    text.contains('\r') && !text.contains('\n')
}

/// `text` with CR line ends as LFs.
pub fn to_lf(text: &str) -> String {
    text.replace('\r', "\n")
}

/// Reads UTF-8 with every CR turned into an LF (a CR byte is never part of
/// another character in UTF-8).
pub struct CrToLf<R>(pub R);

impl<R: Read> Read for CrToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        for b in &mut buf[..n] {
            if *b == b'\r' {
                *b = b'\n';
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::scan::chunk_rows;

    #[test]
    fn only_files_without_an_lf_are_read_as_cr_files() {
        assert!(cr_only("email\ra@b.io\r"));
        assert!(!cr_only("email\r\na@b.io\r\n"));
        assert!(!cr_only("email\na@b.io,\"x\ry\"\n"));
        assert!(!cr_only("email"));
    }

    #[test]
    fn rows_of_a_cr_file_get_their_line_numbers() {
        let file = "email,note\ra@b.io,\"two\rlines\"\r\rc@d.io,x\r";
        let mut lf = String::new();
        CrToLf(file.as_bytes()).read_to_string(&mut lf).unwrap();
        assert_eq!(lf, to_lf(file));
        let rows = chunk_rows(lf.as_bytes(), b',', 1).unwrap();
        let lines: Vec<u64> = rows.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [1, 2, 5]);
        assert_eq!(&rows[1].1[1], "two\nlines");
    }
}
