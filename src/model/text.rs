//! Ids, names and free text from outside. Ids travel in URL paths, log lines
//! and queue keys, so they get a small charset and a length limit; names and
//! callers may be any printable text; longer texts (prompts, results, errors)
//! only must not hold NUL, which PostgreSQL cannot store in `TEXT`.
//! An agent's answer is never refused for what it holds: [`from_agent`]
//! makes it storable instead.

use super::limits::{ID_MAX_CHARS, NAME_MAX_CHARS, TEXT_MAX_BYTES};
use super::Invalid;

/// Characters an id may hold besides ASCII letters and digits.
pub const ID_PUNCTUATION: &str = "._:@-";

/// An id: 1–128 characters of ASCII letters, digits and `. _ : @ -`, not
/// `.` or `..`.
pub fn id(field: &'static str, text: &str) -> Result<(), Invalid> {
    if text.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > ID_MAX_CHARS {
        return Err(Invalid::new(
            field,
            format!("is {chars} characters long; at most {ID_MAX_CHARS} are allowed"),
        ));
    }
    // Clients, proxies and URL normalizers rewrite these two path segments.
    if text == "." || text == ".." {
        return Err(Invalid::new(field, format!("{text:?} is not an id")));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ID_PUNCTUATION.contains(*c)))
    {
        return Err(Invalid::new(
            field,
            format!(
                "{bad:?} is not allowed; use ASCII letters, digits and {ID_PUNCTUATION:?} only"
            ),
        ));
    }
    Ok(())
}

/// A name: 1–200 characters, none of them a control character, not blank.
pub fn name(field: &'static str, text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > NAME_MAX_CHARS {
        return Err(Invalid::new(
            field,
            format!("is {chars} characters long; at most {NAME_MAX_CHARS} are allowed"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// Free text (a prompt, a result, an error detail): at most 1 MiB, no NUL.
pub fn free(field: &'static str, text: &str) -> Result<(), Invalid> {
    if text.len() > TEXT_MAX_BYTES {
        return Err(Invalid::new(
            field,
            format!(
                "is {} bytes long; at most {TEXT_MAX_BYTES} are allowed",
                text.len()
            ),
        ));
    }
    if text.contains('\0') {
        return Err(Invalid::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Free text that must also say something.
pub fn required(field: &'static str, text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    free(field, text)
}

/// Text an agent sent us, made storable: NUL becomes U+FFFD. Nothing else
/// changes; its size is bounded where it is read (the dispatcher's cap).
pub fn from_agent(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_a_small_charset_and_at_most_128_characters() {
        for ok in ["w", "agent-1", "task-42", "a.b_c:d@e", &"x".repeat(128)] {
            assert_eq!(id("id", ok), Ok(()), "{ok}");
        }
        assert_eq!(id("id", "").unwrap_err().problem, "must not be empty");
        assert!(id("id", &"x".repeat(129))
            .unwrap_err()
            .problem
            .contains("129"));
        for bad in ["a b", "a/b", "nul\0", "é", "a\nb", "%2F", ".", ".."] {
            let err = id("workspace_id", bad).unwrap_err();
            assert_eq!(err.field, "workspace_id", "{bad}");
        }
    }

    #[test]
    fn names_are_printable_and_free_text_has_no_nul() {
        assert_eq!(name("name", "Morning standup — Paris"), Ok(()));
        assert!(name("name", "  ").is_err());
        assert!(name("name", "a\u{7}b").is_err());
        assert!(name("name", &"n".repeat(201)).is_err());
        assert_eq!(free("prompt", "line one\nline two\ttab"), Ok(()));
        assert_eq!(
            free("prompt", "a\0b").unwrap_err().problem,
            "must not contain NUL characters"
        );
        assert!(free("result", &"r".repeat(TEXT_MAX_BYTES + 1)).is_err());
        assert!(required("prompt", " ").is_err());
    }

    #[test]
    fn agent_text_is_made_storable_not_refused() {
        assert_eq!(from_agent("ok".into()), "ok");
        assert_eq!(from_agent("a\0b".into()), "a\u{FFFD}b");
    }
}
