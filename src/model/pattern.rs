//! Name patterns, as matrices, invariants and the command line select nodes by (`web-*`,
//! `h?`): shell-like globs over node names.

/// `*` matches any run of characters, `?` any one character.
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy match with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches_pattern;

    #[test]
    fn patterns_match_like_shell_globs() {
        assert!(matches_pattern("h*", "h12"));
        assert!(matches_pattern("*", ""));
        assert!(matches_pattern("h?", "h1"));
        assert!(!matches_pattern("h?", "h12"));
        assert!(matches_pattern("*-app-*", "fastapi-app-0"));
        assert!(matches_pattern("a*b*c", "aXbYbZc"));
        assert!(!matches_pattern("a*b*c", "aXbYbZ"));
        assert!(!matches_pattern("worker", "worker1"));
    }
}
