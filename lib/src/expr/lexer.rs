//! Splits an expression string into tokens, each with its byte span (for error context).

use super::error::{ExprError, ExpressionKind};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A bare word: an attribute name, keyword or function name.
    Word(String),
    /// `#name`, with the `#`.
    NamePlaceholder(String),
    /// `:value`, with the `:`.
    ValuePlaceholder(String),
    /// Decimal digits (only list indexes use them).
    Digits(String),
    /// `(`
    LeftParen,
    /// `)`
    RightParen,
    /// `[`
    LeftBracket,
    /// `]`
    RightBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `=`
    Equal,
    /// `<>`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// The end of the input.
    End,
}

/// One token and where it sits in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte offset of the first character.
    pub(crate) start: usize,
    /// Byte offset just past the last character.
    pub(crate) end: usize,
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Tokenizes `source`. The last token is always [`TokenKind::End`]. An unexpected character is
/// a syntax error naming it, with the surrounding text as context.
pub(crate) fn tokenize(source: &str, kind: ExpressionKind) -> Result<Vec<Token>, ExprError> {
    let mut tokens = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut take_while = |first_end: usize, accept: fn(char) -> bool| {
            let mut end = first_end;
            while let Some(&(at, next)) = chars.peek() {
                if !accept(next) {
                    break;
                }
                end = at + next.len_utf8();
                chars.next();
            }
            end
        };
        let token_kind = match c {
            '(' => TokenKind::LeftParen,
            ')' => TokenKind::RightParen,
            '[' => TokenKind::LeftBracket,
            ']' => TokenKind::RightBracket,
            ',' => TokenKind::Comma,
            '.' => TokenKind::Dot,
            '=' => TokenKind::Equal,
            '+' => TokenKind::Plus,
            '-' => TokenKind::Minus,
            '<' | '>' => {
                let next = chars.peek().map(|&(_, next)| next);
                let (two_char, one_char) = match (c, next) {
                    ('<', Some('>')) => (Some(TokenKind::NotEqual), TokenKind::Less),
                    ('<', Some('=')) => (Some(TokenKind::LessOrEqual), TokenKind::Less),
                    ('<', _) => (None, TokenKind::Less),
                    (_, Some('=')) => (Some(TokenKind::GreaterOrEqual), TokenKind::Greater),
                    _ => (None, TokenKind::Greater),
                };
                match two_char {
                    Some(token_kind) => {
                        chars.next();
                        tokens.push(Token {
                            kind: token_kind,
                            start,
                            end: start + 2,
                        });
                        continue;
                    }
                    None => one_char,
                }
            }
            '#' | ':' => {
                let end = take_while(start + 1, is_word_continue);
                if end == start + 1 {
                    return Err(lex_error(source, kind, start, end));
                }
                let text = source[start..end].to_owned();
                tokens.push(Token {
                    kind: if c == '#' {
                        TokenKind::NamePlaceholder(text)
                    } else {
                        TokenKind::ValuePlaceholder(text)
                    },
                    start,
                    end,
                });
                continue;
            }
            c if c.is_ascii_digit() => {
                let end = take_while(start + 1, |d| d.is_ascii_digit());
                tokens.push(Token {
                    kind: TokenKind::Digits(source[start..end].to_owned()),
                    start,
                    end,
                });
                continue;
            }
            c if is_word_start(c) => {
                let end = take_while(start + 1, is_word_continue);
                tokens.push(Token {
                    kind: TokenKind::Word(source[start..end].to_owned()),
                    start,
                    end,
                });
                continue;
            }
            other => {
                return Err(lex_error(source, kind, start, start + other.len_utf8()));
            }
        };
        tokens.push(Token {
            kind: token_kind,
            start,
            end: start + c.len_utf8(),
        });
    }
    tokens.push(Token {
        kind: TokenKind::End,
        start: source.len(),
        end: source.len(),
    });
    Ok(tokens)
}

/// A syntax error for an unexpected character at `start..end`; the context extends a few
/// characters either side.
fn lex_error(source: &str, kind: ExpressionKind, start: usize, end: usize) -> ExprError {
    let before: usize = source[..start]
        .chars()
        .rev()
        .take(8)
        .map(char::len_utf8)
        .sum();
    let after: usize = source[end..].chars().take(8).map(char::len_utf8).sum();
    ExprError::Syntax {
        kind,
        token: source[start..end].to_owned(),
        near: source[start - before..end + after].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source, ExpressionKind::Condition)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn splits_operators_paths_and_placeholders() {
        assert_eq!(
            kinds("a.b[10] <> :v AND #n>=:w"),
            vec![
                TokenKind::Word("a".into()),
                TokenKind::Dot,
                TokenKind::Word("b".into()),
                TokenKind::LeftBracket,
                TokenKind::Digits("10".into()),
                TokenKind::RightBracket,
                TokenKind::NotEqual,
                TokenKind::ValuePlaceholder(":v".into()),
                TokenKind::Word("AND".into()),
                TokenKind::NamePlaceholder("#n".into()),
                TokenKind::GreaterOrEqual,
                TokenKind::ValuePlaceholder(":w".into()),
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn unexpected_character_is_a_syntax_error_naming_it() {
        let error = tokenize("a = $b", ExpressionKind::Condition).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Invalid ConditionExpression: Syntax error; token: \"$\", near: \"a = $b\""
        );
        assert!(tokenize("a = é", ExpressionKind::Filter).is_err());
        assert!(tokenize("# = :", ExpressionKind::Filter).is_err());
    }
}
