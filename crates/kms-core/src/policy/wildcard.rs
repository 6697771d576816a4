//! The `*` / `?` wildcards of policy documents (actions, resources, StringLike, ArnLike).

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also none) and `?`
/// exactly one. Linear backtracking on the last `*`, so hostile patterns cannot blow up.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    // Every policy statement's actions and resources are matched on every request: ASCII (all
    // actions, almost every ARN) is matched byte by byte without collecting characters first.
    if pattern.is_ascii() && text.is_ascii() {
        matches_in(pattern.as_bytes(), text.as_bytes(), b'*', b'?')
    } else {
        let pattern: Vec<char> = pattern.chars().collect();
        let text: Vec<char> = text.chars().collect();
        matches_in(&pattern, &text, '*', '?')
    }
}

fn matches_in<C: Copy + PartialEq>(pattern: &[C], text: &[C], any_run: C, any_one: C) -> bool {
    let (mut p, mut t) = (0, 0);
    // The position of the last `*` seen and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(&c) if c == any_run => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == any_one || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == any_run)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", ""));
        assert!(matches("*", "kms:encrypt"));
        assert!(matches("kms:*", "kms:encrypt"));
        assert!(matches("kms:generatedatakey*", "kms:generatedatakeywithoutplaintext"));
        assert!(matches("kms:re?ncrypt*", "kms:reencryptfrom"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(matches("a*b*c", "abc"));
        assert!(!matches("a*b*c", "acb"));
        assert!(!matches("kms:encrypt", "kms:encrypt2"));
        assert!(!matches("kms:?", "kms:"));
        assert!(matches("**a", "a"));
        assert!(!matches("", "a"));
        assert!(matches("", ""));
        assert!(!matches(&"*a".repeat(50), &"a".repeat(49)), "no exponential blow-up");
    }

    #[test]
    fn a_question_mark_is_one_character_not_one_byte() {
        assert!(matches("caf?", "café"));
        assert!(matches("?", "é"));
        assert!(!matches("??", "é"));
        assert!(matches("*é*", "un café noir"));
        assert!(!matches("café", "cafe"));
    }
}
