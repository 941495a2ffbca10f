//! Who reviews: the name the reviewer gives once for the session, recorded with each cell they
//! review (`reviewed_by`, beside `reviewed_at`) and offered as each smear's sign-off name, so
//! that the exports say who reviewed every cell even when a trainee reviews and a senior signs
//! off. Plain Rust, tested natively.

use crate::session::Session;
use serde_json::Value;

/// Longest reviewer name accepted, in characters.
pub const MAX_REVIEWER_NAME: usize = 60;

/// A reviewer's name as typed: trimmed; `Ok(None)` for an empty field; at most
/// [`MAX_REVIEWER_NAME`] characters and no control characters, else a message that says what
/// is wrong. The same rule holds for the session's reviewer and a sign-off's name.
pub fn parse_reviewer(text: &str) -> Result<Option<String>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let n = t.chars().count();
    if n > MAX_REVIEWER_NAME {
        return Err(format!(
            "a reviewer's name has at most {MAX_REVIEWER_NAME} characters; this one has {n}"
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(
            "a reviewer's name cannot hold tabs, line breaks or other control characters".into(),
        );
    }
    Ok(Some(t.to_string()))
}

impl Session {
    /// Set the session's reviewer from the text typed (empty: nobody named, and the reviews
    /// that follow name nobody). A bad name is refused with the reason and changes nothing.
    /// Reviews already given keep the name they were given under.
    pub fn set_reviewer(&mut self, text: &str) -> Result<(), String> {
        self.reviewer = parse_reviewer(text)?;
        Ok(())
    }
}

/// Restore the session's reviewer from a stored session's `value` (its `reviewer`, checked as
/// a name typed would be); a bad one is dropped and said in `problems`.
pub fn restore_reviewer(value: &Value, session: &mut Session, problems: &mut Vec<String>) {
    let Some(r) = value.get("reviewer").filter(|r| !r.is_null()) else {
        return;
    };
    match r.as_str().map(parse_reviewer) {
        Some(Ok(name)) => session.reviewer = name,
        _ => problems.push(format!("stored reviewer {r} dropped")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::session;

    #[test]
    fn a_name_is_trimmed_and_a_bad_one_refused_with_the_reason() {
        assert_eq!(
            parse_reviewer("  Dr A. Smith "),
            Ok(Some("Dr A. Smith".into()))
        );
        assert_eq!(parse_reviewer("   "), Ok(None));
        let long = "x".repeat(MAX_REVIEWER_NAME + 1);
        let e = parse_reviewer(&long).expect_err("too long");
        assert!(e.contains("at most 60 characters; this one has 61"), "{e}");
        assert!(
            parse_reviewer(&"é".repeat(MAX_REVIEWER_NAME)).is_ok(),
            "characters, not bytes"
        );
        for bad in ["Dr\tA", "Dr\nA"] {
            let e = parse_reviewer(bad).expect_err(bad);
            assert!(e.contains("control characters"), "{e}");
        }
    }

    #[test]
    fn each_review_names_the_reviewer_of_its_time_and_undo_restores_the_one_before() {
        let mut s = session();
        let now = "2026-12-07T20:00:00.000Z";
        // Nobody named: the review names nobody.
        assert!(s.reclassify(0, "0-0", Some("lymphocyte".into()), now));
        assert_eq!(s.images[0].cells[0].reviewed_by, None);
        s.set_reviewer(" Trainee B ").expect("name");
        assert!(s.reclassify(0, "0-1", Some("monocyte".into()), now));
        s.set_reviewer("Dr A").expect("name");
        assert!(s.reclassify(0, "0-1", Some("lymphocyte".into()), now));
        let by = |s: &Session, i: usize| s.images[0].cells[i].reviewed_by.clone();
        assert_eq!(
            by(&s, 1).as_deref(),
            Some("Dr A"),
            "the latest review's reviewer"
        );
        assert_eq!(by(&s, 0), None, "an earlier review keeps its own");
        // The report's caption names the reviewer where there is one.
        assert!(s.images[0].cells[1]
            .caption()
            .ends_with(", review, reviewed by Dr A)"));
        assert!(s.images[0].cells[0]
            .caption()
            .ends_with(", auto, reviewed)"));
        // A bad name changes nothing.
        assert!(s.set_reviewer("Dr\tC").is_err());
        assert_eq!(s.reviewer.as_deref(), Some("Dr A"));
        s.undo_last();
        assert_eq!(by(&s, 1).as_deref(), Some("Trainee B"));
        s.undo_last();
        assert_eq!(by(&s, 1), None);
        // It is kept with the session; a bad stored name is dropped and said.
        let json = serde_json::to_string(&s).expect("json");
        let (back, problems) = crate::session::restore(&json);
        assert_eq!(back.reviewer.as_deref(), Some("Dr A"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back.images[0].cells[1].reviewed_by, None);
        let mut v: Value = serde_json::from_str(&json).expect("json");
        v["reviewer"] = Value::from("Dr\nA");
        let (back, problems) = crate::session::restore(&v.to_string());
        assert_eq!(back.reviewer, None);
        assert_eq!(problems, ["stored reviewer \"Dr\\nA\" dropped"]);
    }
}
