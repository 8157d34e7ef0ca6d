//! What kind of text file this is: its encoding and its delimiter, read from
//! the first bytes only, so a file of any size is sniffed at the same cost.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::line_ends;

/// Encodings people's spreadsheets really produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    Utf8,
    /// UTF-8 with a byte-order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    Utf16le,
    Utf16be,
    /// The fallback for bytes that are not UTF-8 (Excel's "CSV" on Windows).
    Windows1252,
    /// Bytes that are not UTF-8 in a file with classic Mac line ends (Excel
    /// for Mac's "CSV (Macintosh)").
    MacRoman,
}

impl TextEncoding {
    pub fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Utf8 | TextEncoding::Utf8Bom => encoding_rs::UTF_8,
            TextEncoding::Utf16le => encoding_rs::UTF_16LE,
            TextEncoding::Utf16be => encoding_rs::UTF_16BE,
            TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252,
            TextEncoding::MacRoman => encoding_rs::MACINTOSH,
        }
    }

    /// True when the file's bytes are already the UTF-8 the parser reads, so
    /// workers can read byte ranges of it directly.
    pub fn is_utf8(self) -> bool {
        matches!(self, TextEncoding::Utf8 | TextEncoding::Utf8Bom)
    }

    /// Length of the byte-order mark a file read as it is (UTF-8) starts
    /// with; decoders drop the others'.
    pub fn bom_len(self) -> usize {
        match self {
            TextEncoding::Utf8Bom => 3,
            _ => 0,
        }
    }
}

/// The encoding of a file from its first bytes: a BOM decides; else UTF-8 if
/// the sample is valid UTF-8 (a character cut at the sample's end is fine).
pub fn encoding(sample: &[u8]) -> TextEncoding {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return TextEncoding::Utf8Bom;
    }
    if sample.starts_with(&[0xFF, 0xFE]) {
        return TextEncoding::Utf16le;
    }
    if sample.starts_with(&[0xFE, 0xFF]) {
        return TextEncoding::Utf16be;
    }
    if let Some(utf16) = utf16_without_bom(sample) {
        return utf16;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => TextEncoding::Utf8,
        Err(e) if e.error_len().is_none() => TextEncoding::Utf8,
        Err(_) => TextEncoding::Windows1252,
    }
}

/// UTF-16 written without a BOM (some database and script exports): in
/// text that is mostly ASCII, one byte of every pair is NUL, always the same
/// one. Text in other scripts is not recognised, and is refused for its NULs.
fn utf16_without_bom(sample: &[u8]) -> Option<TextEncoding> {
    let pairs: Vec<&[u8]> = sample.chunks_exact(2).take(512).collect();
    if pairs.len() < 4 {
        return None;
    }
    let share = |nul: fn(&[u8]) -> bool| pairs.iter().filter(|p| nul(p)).count() * 100 / pairs.len();
    let (high_nul, low_nul) = (share(|p| p[1] == 0), share(|p| p[0] == 0));
    match (high_nul, low_nul) {
        (90.., 0..=10) => Some(TextEncoding::Utf16le),
        (0..=10, 90..) => Some(TextEncoding::Utf16be),
        _ => None,
    }
}

/// The 8-bit encoding of a file that is not UTF-8.
pub fn eight_bit(cr_only: bool) -> TextEncoding {
    if cr_only {
        TextEncoding::MacRoman
    } else {
        TextEncoding::Windows1252
    }
}

/// A file's first bytes as text.
pub struct Sample {
    pub encoding: TextEncoding,
    /// Decoded; CR line ends made LFs (CRLF ones are left to the parser).
    pub text: String,
    /// Its lines end in CR alone (`line_ends`): the file is read with LFs.
    pub cr_only: bool,
}

/// The encoding of `sample` (an 8-bit one with CR line ends is Mac Roman)
/// and its text.
pub fn read_sample(sample: &[u8]) -> Sample {
    let mut encoding = encoding(sample);
    let mut text = decode_sample(sample, encoding);
    // A CR is one byte in every encoding here but UTF-16, which decodes first.
    let cr_only = line_ends::cr_only(&text);
    if cr_only {
        if encoding == TextEncoding::Windows1252 {
            encoding = eight_bit(true);
            text = decode_sample(sample, encoding);
        }
        text = line_ends::to_lf(&text);
    }
    Sample {
        encoding,
        text,
        cr_only,
    }
}

/// Decodes a sample to text (without its BOM, if it has one); a character
/// cut at the end is dropped.
pub fn decode_sample(sample: &[u8], enc: TextEncoding) -> String {
    let bom = match encoding_rs::Encoding::for_bom(sample) {
        Some((of, len)) if of == enc.encoding() => len,
        _ => 0,
    };
    let body = &sample[bom..];
    let (text, _) = enc.encoding().decode_without_bom_handling(body);
    let mut text = text.into_owned();
    if text.ends_with('\u{FFFD}') {
        text.pop();
    }
    text
}

/// Why a file that is not text cannot be imported, from its first bytes:
/// a workbook or archive uploaded instead of its CSV export, most often.
pub fn not_text(sample: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 5] = [
        (
            b"PK\x03\x04",
            "the file is a ZIP archive, such as an Excel workbook (.xlsx), not text: save it as CSV and import that",
        ),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "the file is an Excel 97-2003 workbook (.xls), not text: save it as CSV and import that",
        ),
        (
            b"%PDF",
            "the file is a PDF, not text: export the contacts as CSV and import that",
        ),
        (b"\x1F\x8B", "the file is gzip-compressed: import the CSV inside it"),
        (
            b"{\\rtf",
            "the file is a Word (RTF) document, not text: save it as plain text or CSV",
        ),
    ];
    if let Some((_, why)) = SIGNATURES.iter().find(|(magic, _)| sample.starts_with(magic)) {
        return Some(why);
    }
    // Text never holds NUL, except as half of UTF-16, whose BOM says so.
    let utf16 = matches!(encoding(sample), TextEncoding::Utf16le | TextEncoding::Utf16be);
    (!utf16 && sample.contains(&0)).then_some(
        "the file is not text (it holds NUL bytes): save it as CSV (UTF-8, or UTF-16 with a byte-order mark) and import that",
    )
}

pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Excel's `sep=;` first line, which names the delimiter of the rest.
pub fn excel_separator(text: &str) -> Option<u8> {
    let first = text.lines().next()?.trim().trim_matches('"');
    match first.as_bytes() {
        [b's' | b'S', b'e' | b'E', b'p' | b'P', b'=', d] => DELIMITERS.contains(d).then_some(*d),
        _ => None,
    }
}

/// The delimiter that splits the sample's first lines into the same number
/// of fields, the most fields winning; a comma when none does (one column).
pub fn delimiter(text: &str) -> u8 {
    if let Some(d) = excel_separator(text) {
        return d;
    }
    // Only whole lines: the sample may end mid-record.
    let complete = match text.rfind('\n') {
        Some(i) if i + 1 < text.len() => &text[..=i],
        _ => text,
    };
    let mut best = (b',', 1usize, 0usize);
    for d in DELIMITERS {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(d)
            .has_headers(false)
            .flexible(true)
            .from_reader(complete.as_bytes());
        let counts: Vec<usize> = reader
            .byte_records()
            .take(50)
            .filter_map(|r| r.ok())
            .filter(|r| r.iter().any(|f| !f.is_empty()))
            .map(|r| r.len())
            .collect();
        let Some(&first) = counts.first() else { continue };
        if first < 2 {
            continue;
        }
        let consistent = counts.iter().filter(|&&c| c == first).count();
        // Most lines agreeing, then most fields.
        if (consistent, first) > (best.2, best.1) {
            best = (d, first, consistent);
        }
    }
    best.0
}

pub fn delimiter_name(d: u8) -> &'static str {
    match d {
        b';' => "semicolon",
        b'\t' => "tab",
        b'|' => "pipe",
        _ => "comma",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_without_a_bom_is_recognised_by_its_nul_halves() {
        let text = "email,name\r\nrené@b.io,Zoë\r\n";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(encoding(&le), TextEncoding::Utf16le);
        assert_eq!(encoding(&be), TextEncoding::Utf16be);
        assert_eq!(read_sample(&le).text, text, "no first character taken for a BOM");
        assert_eq!(read_sample(&be).text, text);
        assert_eq!(not_text(&le), None);
        // Not UTF-16: NULs here and there, or in both halves.
        assert_eq!(encoding(b"a\0b,c\nd,e\n"), TextEncoding::Utf8);
        assert!(not_text(b"a\0b,c\nd,e\n").is_some());
        assert!(not_text(&[0u8; 64]).is_some());
        assert_eq!(encoding(b"ab"), TextEncoding::Utf8);
    }

    #[test]
    fn a_file_with_classic_mac_line_ends_is_read_with_lfs() {
        let sample = b"email,name\ra@b.io,Ren\x8E\r";
        let read = read_sample(sample);
        assert_eq!((read.encoding, read.cr_only), (TextEncoding::MacRoman, true));
        assert_eq!(read.text, "email,name\na@b.io,René\n");
        let utf8 = read_sample("email\rRené\r".as_bytes());
        assert_eq!(
            (utf8.encoding, utf8.text.as_str()),
            (TextEncoding::Utf8, "email\nRené\n")
        );
        let windows = read_sample(b"email\r\nRen\xE9\r\n");
        assert_eq!((windows.encoding, windows.cr_only), (TextEncoding::Windows1252, false));
        assert_eq!(windows.text, "email\r\nRené\r\n");
    }

    #[test]
    fn boms_decide_the_encoding() {
        assert_eq!(encoding(b"\xEF\xBB\xBFemail\n"), TextEncoding::Utf8Bom);
        assert_eq!(encoding(b"\xFF\xFEe\0"), TextEncoding::Utf16le);
        assert_eq!(encoding(b"\xFE\xFF\0e"), TextEncoding::Utf16be);
        assert_eq!(encoding("email\nzoë@x.io\n".as_bytes()), TextEncoding::Utf8);
        // Cut in the middle of "ë": still UTF-8.
        assert_eq!(encoding(&"zoë".as_bytes()[..3]), TextEncoding::Utf8);
        assert_eq!(encoding(b"name\nZo\xEB\n"), TextEncoding::Windows1252);
    }

    #[test]
    fn samples_decode_without_their_bom() {
        assert_eq!(decode_sample(b"\xEF\xBB\xBFa,b", TextEncoding::Utf8Bom), "a,b");
        assert_eq!(decode_sample(b"\xFF\xFEa\0,\0b\0", TextEncoding::Utf16le), "a,b");
        assert_eq!(decode_sample(b"Zo\xEB", TextEncoding::Windows1252), "Zoë");
        assert_eq!(decode_sample(&"zoë".as_bytes()[..3], TextEncoding::Utf8), "zo");
    }

    #[test]
    fn delimiters_are_detected() {
        assert_eq!(delimiter("email,name\na@b.io,A\n"), b',');
        assert_eq!(delimiter("email;name;city\na@b.io;A, Jr;X\n"), b';');
        assert_eq!(delimiter("email\tname\na@b.io\tA\n"), b'\t');
        assert_eq!(delimiter("email|name\na@b.io|A\n"), b'|');
        // A quoted comma does not fool the semicolon file.
        assert_eq!(delimiter("email;name\na@b.io;\"Smith, J\"\nb@b.io;B\n"), b';');
        // One column: no delimiter at all.
        assert_eq!(delimiter("email\na@b.io\n"), b',');
        // A cut last line is ignored.
        assert_eq!(delimiter("a;b;c\n1;2;3\n4;5"), b';');
        // Excel's first line names it, whatever the rows look like.
        assert_eq!(delimiter("sep=;\nemail,name;x\na@b.io,A;y\n"), b';');
        assert_eq!(delimiter("\"sep=|\"\r\nemail|name\n"), b'|');
        assert_eq!(excel_separator("sep=:\nemail\n"), None, "not one we read");
        assert_eq!(excel_separator("separate,email\n"), None);
    }

    #[test]
    fn workbooks_and_binary_files_are_not_text() {
        let said = |sample: &[u8]| not_text(sample).unwrap_or("text");
        assert!(said(b"PK\x03\x04\x14\0\x06\0").contains(".xlsx"));
        assert!(said(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0").contains(".xls)"));
        assert!(said(b"%PDF-1.7\n").contains("PDF"));
        assert!(said(b"\x1F\x8B\x08\0").contains("gzip"));
        assert!(said(b"email\0name\n").contains("NUL"));
        for text in [
            &b"email,name\n"[..],
            b"\xFF\xFEe\0m\0",
            b"\xFE\xFF\0e\0m",
            b"Zo\xEB\n",
            b"",
        ] {
            assert_eq!(not_text(text), None, "{text:?}");
        }
    }
}
