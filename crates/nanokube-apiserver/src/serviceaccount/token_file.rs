//! Static bearer tokens from kube-apiserver's `--token-auth-file` (upstream
//! `authentication/token/tokenfile`): a CSV file of `token,user,uid[,"group1,group2"]`.
//!
//! The file is read the way Go's `encoding/csv` reads it with `FieldsPerRecord = -1`: records
//! may have any number of fields (extra ones are ignored), fields may be quoted (`""` is a quote
//! inside quotes, and a quoted field may span lines), blank lines are skipped, spaces are kept,
//! and there are no comment lines.

use crate::authn::UserInfo;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("failed to read token file '{}': {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Go's `csv.ParseError`.
    #[error("{}parse error on line {line}, column {column}: {message}", record_prefix(*start_line, *line))]
    Csv {
        start_line: usize,
        line: usize,
        column: usize,
        message: &'static str,
    },
    #[error(
        "token file '{}' must have at least 3 columns (token, user name, user uid), found {found}",
        path.display()
    )]
    TooFewColumns { path: PathBuf, found: usize },
}

/// Go prefixes errors inside a record that began on an earlier line (a multi-line quoted field).
fn record_prefix(start_line: usize, line: usize) -> String {
    if start_line == line {
        String::new()
    } else {
        format!("record on line {start_line}; ")
    }
}

/// The users of a token file, looked up by token.
#[derive(Clone, Default)]
pub struct StaticTokens {
    /// One entry per distinct token; a later duplicate replaces the earlier user, as upstream's
    /// map does.
    entries: Vec<(String, UserInfo)>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The tokens are secrets.
        f.debug_struct("StaticTokens")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

impl StaticTokens {
    /// Parses the contents of a token file.
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        Self::parse_file(text, Path::new(""))
    }

    /// Reads and parses `--token-auth-file`.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_file(&text, path)
    }

    fn parse_file(text: &str, path: &Path) -> Result<Self, TokenFileError> {
        let mut tokens = StaticTokens::default();
        let mut record_num = 0;
        for record in read_csv(text)? {
            if record.len() < 3 {
                return Err(TokenFileError::TooFewColumns {
                    path: path.to_path_buf(),
                    found: record.len(),
                });
            }
            record_num += 1;
            let mut fields = record.into_iter();
            let (Some(token), Some(name), Some(uid)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if token.is_empty() {
                tracing::warn!(
                    "empty token has been found in token file '{}', record number '{record_num}'",
                    path.display()
                );
                continue;
            }
            // Upstream splits the fourth column as is: an empty one is the group "".
            let groups = fields
                .next()
                .map(|g| g.split(',').map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default();
            let mut user = UserInfo::authenticated(name, groups);
            user.uid = uid;
            match tokens.entries.iter_mut().find(|(t, _)| *t == token) {
                Some(entry) => {
                    tracing::warn!(
                        "duplicate token has been found in token file '{}', record number '{record_num}'",
                        path.display()
                    );
                    entry.1 = user;
                }
                None => tokens.entries.push((token, user)),
            }
        }
        Ok(tokens)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The user of a bearer token, with `system:authenticated` added. Every entry is compared
    /// in constant time so the answer's timing does not reveal how much of a token matched.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let mut found = None;
        for (candidate, user) in &self.entries {
            if constant_time_eq(candidate.as_bytes(), token.as_bytes()) {
                found = Some(user);
            }
        }
        found.cloned()
    }
}

/// Compares without an early exit on the first differing byte (Go's
/// `subtle.ConstantTimeCompare`; like it, a length mismatch answers at once).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Splits CSV text into records as Go's `csv.Reader` does (no comment character, no lazy
/// quotes, leading spaces kept, `\r\n` read as `\n`, blank lines skipped).
fn read_csv(text: &str) -> Result<Vec<Vec<String>>, TokenFileError> {
    const QUOTE: &str = "extraneous or missing \" in quoted-field";
    const BARE_QUOTE: &str = "bare \" in non-quoted-field";
    let text = text.replace("\r\n", "\n");
    let mut chars = text.chars().peekable();
    let mut records = Vec::new();
    let mut line = 1;
    while let Some(&first) = chars.peek() {
        if first == '\n' {
            chars.next();
            line += 1;
            continue;
        }
        let start_line = line;
        let error = |line, column, message| TokenFileError::Csv {
            start_line,
            line,
            column,
            message,
        };
        let mut record = Vec::new();
        let mut column = 0;
        loop {
            let mut field = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                column += 1;
                loop {
                    match chars.next() {
                        Some('"') => {
                            column += 1;
                            match chars.peek() {
                                Some('"') => {
                                    chars.next();
                                    column += 1;
                                    field.push('"');
                                }
                                Some(',' | '\n') | None => break,
                                Some(_) => return Err(error(line, column, QUOTE)),
                            }
                        }
                        Some('\n') => {
                            field.push('\n');
                            line += 1;
                            column = 0;
                        }
                        Some(c) => {
                            field.push(c);
                            column += c.len_utf8();
                        }
                        None => return Err(error(line, column + 1, QUOTE)),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    match c {
                        ',' | '\n' => break,
                        '"' => return Err(error(line, column + 1, BARE_QUOTE)),
                        _ => {
                            chars.next();
                            column += c.len_utf8();
                            field.push(c);
                        }
                    }
                }
            }
            record.push(field);
            match chars.next() {
                Some(',') => column += 1,
                Some('\n') => {
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
// In tests a panic is the failure report.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn groups(u: &UserInfo) -> Vec<&str> {
        u.groups.iter().map(String::as_str).collect()
    }

    #[test]
    fn token_file_gives_user_uid_and_quoted_groups() {
        let tokens =
            StaticTokens::parse("secret1,alice,uid-a,\"system:masters,devs\"\nsecret2,bob,uid-b\n")
                .unwrap();
        let alice = tokens.authenticate("secret1").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid, "uid-a");
        assert_eq!(
            groups(&alice),
            ["system:masters", "devs", "system:authenticated"]
        );
        let bob = tokens.authenticate("secret2").unwrap();
        assert_eq!((bob.name.as_str(), bob.uid.as_str()), ("bob", "uid-b"));
        assert_eq!(groups(&bob), ["system:authenticated"]);
        assert!(bob.extra.is_empty());
    }

    #[test]
    fn token_file_unknown_or_partial_token_is_not_authenticated() {
        let tokens = StaticTokens::parse("secret1,alice,uid-a\n").unwrap();
        assert!(tokens.authenticate("secret").is_none());
        assert!(tokens.authenticate("secret12").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn token_file_ignores_extra_columns_and_blank_lines() {
        let tokens =
            StaticTokens::parse("\r\n\nt1,u1,1,g1,extra,more\r\n\n   \nignored").unwrap_err();
        // A line of spaces is a one-field record, not a blank line.
        assert!(matches!(
            tokens,
            TokenFileError::TooFewColumns { found: 1, .. }
        ));

        let tokens = StaticTokens::parse("\r\n\nt1,u1,1,g1,extra,more\r\n\n").unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            groups(&tokens.authenticate("t1").unwrap()),
            ["g1", "system:authenticated"]
        );
    }

    #[test]
    fn token_file_with_too_few_columns_is_an_error() {
        let err = StaticTokens::parse("t1,u1,1\nt2,u2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "token file '' must have at least 3 columns (token, user name, user uid), found 2"
        );
    }

    #[test]
    fn token_file_has_no_comment_lines() {
        // Go's csv reader has no comment character unless one is set; upstream sets none, so
        // a "comment" is just another record.
        let tokens = StaticTokens::parse("# token,user,uid,groups\n").unwrap();
        assert_eq!(tokens.authenticate("# token").unwrap().name, "user");
        let err = StaticTokens::parse("# a comment\n").unwrap_err();
        assert!(matches!(
            err,
            TokenFileError::TooFewColumns { found: 1, .. }
        ));
    }

    #[test]
    fn token_file_skips_empty_tokens_and_last_duplicate_wins() {
        let tokens = StaticTokens::parse(",nobody,0\nt,first,1\nt,second,2\n").unwrap();
        assert_eq!(tokens.len(), 1);
        assert!(tokens.authenticate("").is_none());
        assert_eq!(tokens.authenticate("t").unwrap().name, "second");
    }

    #[test]
    fn token_file_quoted_fields_keep_commas_quotes_and_newlines() {
        let tokens =
            StaticTokens::parse("\"t,1\",\"say \"\"hi\"\"\",1,\"a,\nb\"\n t2 , u2 ,2\n").unwrap();
        let u = tokens.authenticate("t,1").unwrap();
        assert_eq!(u.name, "say \"hi\"");
        assert_eq!(groups(&u), ["a", "\nb", "system:authenticated"]);
        // Spaces are part of the fields, as in Go's reader without TrimLeadingSpace.
        assert_eq!(tokens.authenticate(" t2 ").unwrap().name, " u2 ");
    }

    #[test]
    fn token_file_empty_groups_column_is_the_empty_group() {
        let tokens = StaticTokens::parse("t,u,1,\n").unwrap();
        assert_eq!(
            groups(&tokens.authenticate("t").unwrap()),
            ["", "system:authenticated"]
        );
    }

    #[test]
    fn token_file_bad_quotes_are_parse_errors() {
        let err = StaticTokens::parse("t,u\"x,1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "parse error on line 1, column 4: bare \" in non-quoted-field"
        );
        let err = StaticTokens::parse("t,\"u\"x,1\n").unwrap_err();
        assert!(matches!(err, TokenFileError::Csv { line: 1, .. }));
        let err = StaticTokens::parse("t,u,1\nt2,\"unterminated\n").unwrap_err();
        assert!(matches!(err, TokenFileError::Csv { .. }));
    }

    #[test]
    fn token_file_load_reads_the_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "t,u,1,\"g\"\n").unwrap();
        let tokens = StaticTokens::load(&path).unwrap();
        assert_eq!(tokens.authenticate("t").unwrap().name, "u");

        std::fs::write(&path, "t\n").unwrap();
        let err = StaticTokens::load(&path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("token file '{}'", path.display()))
        );

        let missing = StaticTokens::load(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, TokenFileError::Read { .. }));
    }
}
