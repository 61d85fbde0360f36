//! The manifest's bytes as text: UTF-8, with or without a byte-order mark.
//!
//! Editors on Windows often start a UTF-8 file with a byte-order mark (EF BB BF); it is dropped
//! so that the YAML starts where the user sees it start. Anything that is not UTF-8 is an error
//! at the line and column of the first byte that is not, with the file shown as far as it reads.

use nimbus_diagnostic::{Diagnostic, Span, line_starts};

/// The UTF-8 byte-order mark, as a character.
const BOM: char = '\u{feff}';

/// `source` without a leading byte-order mark.
pub(crate) fn strip_bom(source: String) -> String {
    match source.strip_prefix(BOM) {
        Some(rest) => rest.to_string(),
        None => source,
    }
}

/// Decodes the manifest's bytes; on failure, the text as far as it can be shown (invalid bytes
/// replaced) and the error at the first invalid byte.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<String, (String, Diagnostic)> {
    let bytes = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    let error = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e,
    };
    let bytes = error.as_bytes();
    let valid = error.utf8_error().valid_up_to();
    let shown = String::from_utf8_lossy(bytes).into_owned();
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        let d = Diagnostic::error(
            Span::at(1, 1, 1),
            "the manifest is UTF-16 text; nimbus reads UTF-8",
        )
        .with_hint("save the file as UTF-8 (in most editors: Save with Encoding → UTF-8)");
        return Err((String::new(), d));
    }
    let prefix = std::str::from_utf8(&bytes[..valid]).expect("valid up to here");
    let (line, column) = position_after(prefix);
    let d = Diagnostic::error(
        Span::at(line, column, 1),
        format!(
            "the manifest is not valid UTF-8: byte `0x{:02X}` at line {line}, column {column}",
            bytes[valid]
        ),
    )
    .with_label("not UTF-8")
    .with_hint("save the file as UTF-8 (in most editors: Save with Encoding → UTF-8), or remove the character");
    Err((shown, d))
}

/// The 1-based line and column just after `text`, counting `\n`, `\r\n` and a lone `\r` as
/// line breaks, as the YAML parser does.
fn position_after(text: &str) -> (u32, u32) {
    let starts = line_starts(text);
    let last = starts.last().copied().unwrap_or(0);
    let column = text[last..].chars().count() as u32 + 1;
    (starts.len() as u32, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_is_dropped() {
        let text = decode(b"\xEF\xBB\xBFversion: 1\n".to_vec()).unwrap();
        assert_eq!(text, "version: 1\n");
        assert_eq!(strip_bom("\u{feff}a".into()), "a");
    }

    #[test]
    fn the_first_bad_byte_is_located() {
        let (shown, d) = decode(b"a: 1\r\nb: 2\rc: \xC3x\xFF\n".to_vec()).unwrap_err();
        let span = d.span.unwrap();
        assert_eq!((span.line, span.column), (3, 4), "{}", d.message);
        assert!(d.message.contains("`0xC3`"), "{}", d.message);
        assert!(shown.contains("c: \u{fffd}x"));
        let (_, d) = decode(b"\xFF\xFEv\x00".to_vec()).unwrap_err();
        assert!(d.message.contains("UTF-16"));
    }
}
