//! Label and field selectors, parsed and matched the way apimachinery's `pkg/labels` and
//! `pkg/fields` do it, including their error texts (clients and kubectl print them verbatim
//! in the 400 they get back for a bad `labelSelector` / `fieldSelector`).
//!
//! * [`LabelSelector::parse`] is `labels.Parse` (the `labelSelector` query parameter, `kubectl
//!   get -l`), [`LabelSelector::from_json`] is `metav1.LabelSelectorAsSelector` (the
//!   `spec.selector` of Jobs, Deployments, …), and its [`Display`](std::fmt::Display) is
//!   `Selector.String()` (what `Scale.status.selector` and table `Selector` columns show).
//! * [`FieldSelector::parse`] is `fields.ParseSelector`; which field labels a resource accepts
//!   is decided by each kind's strategy, not here.

use std::collections::BTreeMap;
use std::fmt;

use crate::goformat::go_quote;
use serde_json::Value;

/// Why a selector could not be parsed. `Display` is the upstream message text.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SelectorError {
    /// A label selector string or requirement was rejected (`labels.Parse` /
    /// `labels.NewRequirement`); the message is the complete upstream text, e.g.
    /// `unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt`.
    #[error("{0}")]
    InvalidLabelSelector(String),
    /// A `matchExpressions` entry used an operator other than In/NotIn/Exists/DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    UnknownOperator(String),
    /// The JSON form of a label selector has the wrong shape (not an object, a non-string
    /// `matchLabels` value, …) — upstream fails to decode such an object at all.
    #[error("invalid label selector: {0}")]
    MalformedLabelSelector(String),
    /// A field selector term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    InvalidFieldTerm { selector: String, term: String },
    /// A backslash in a field selector value escapes something other than `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// A field selector value holds a bare `,` or `=`; upstream prints the rune's code point.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// The operator of one label requirement (apimachinery `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOperator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One term of a label selector: `key op values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    pub key: String,
    pub operator: LabelOperator,
    /// As given (the parser stores them sorted and de-duplicated, `matchExpressions` keep
    /// their order); `Display` sorts them.
    pub values: Vec<String>,
}

impl LabelRequirement {
    /// `Requirement.Matches`: `!=`/`notin` also match objects lacking the key; `>`/`<` need an
    /// integer label value.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            LabelOperator::In | LabelOperator::Equals | LabelOperator::DoubleEquals => {
                value.is_some_and(|v| self.values.contains(v))
            }
            LabelOperator::NotIn | LabelOperator::NotEquals => {
                value.is_none_or(|v| !self.values.contains(v))
            }
            LabelOperator::Exists => value.is_some(),
            LabelOperator::DoesNotExist => value.is_none(),
            LabelOperator::GreaterThan | LabelOperator::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == LabelOperator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            LabelOperator::DoesNotExist => return write!(f, "!{}", self.key),
            LabelOperator::Exists => return f.write_str(&self.key),
            LabelOperator::Equals => "=",
            LabelOperator::DoubleEquals => "==",
            LabelOperator::NotEquals => "!=",
            LabelOperator::In => " in ",
            LabelOperator::NotIn => " notin ",
            LabelOperator::GreaterThan => ">",
            LabelOperator::LessThan => "<",
        };
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let values = values.join(",");
        if matches!(self.operator, LabelOperator::In | LabelOperator::NotIn) {
            write!(f, "{}{op}({values})", self.key)
        } else {
            write!(f, "{}{op}{values}", self.key)
        }
    }
}

/// A parsed label selector: the AND of its requirements, kept sorted by key as upstream does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
    /// `labels.Nothing()`: what a missing (`null`) `metav1.LabelSelector` converts to.
    nothing: bool,
}

impl LabelSelector {
    /// Matches every object (`labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// Matches no object (`labels.Nothing()`); prints as the empty string.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// `labels.SelectorFromSet`: every label must be present with exactly that value.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        let requirements = labels
            .iter()
            .map(|(key, value)| LabelRequirement {
                key: key.clone(),
                operator: LabelOperator::Equals,
                values: vec![value.clone()],
            })
            .collect();
        Self {
            requirements,
            nothing: false,
        }
    }

    /// The `labelSelector` query syntax (`labels.Parse`): comma = AND; `k=v`, `k==v`, `k!=v`,
    /// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>N`, `k<N`. The empty string matches
    /// everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser {
            items: lex(s),
            position: 0,
        };
        let mut requirements = parser
            .parse()
            .map_err(SelectorError::InvalidLabelSelector)?;
        // Upstream sorts by key so that equal selectors print and compare equally.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// `metav1.LabelSelectorAsSelector` on the JSON form (`matchLabels` + `matchExpressions`).
    /// `null` is a missing selector and matches nothing; `{}` matches everything.
    pub fn from_json(v: &Value) -> Result<Self, SelectorError> {
        let object = match v {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(object) => object,
            other => {
                return Err(SelectorError::MalformedLabelSelector(format!(
                    "expected an object, got {}",
                    json_type_name(other)
                )));
            }
        };
        let mut requirements = Vec::new();
        match object.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(match_labels)) => {
                for (key, value) in match_labels {
                    let Value::String(value) = value else {
                        return Err(SelectorError::MalformedLabelSelector(format!(
                            "matchLabels[{key}] must be a string"
                        )));
                    };
                    requirements.push(
                        new_requirement(key, LabelOperator::Equals, vec![value.clone()])
                            .map_err(SelectorError::InvalidLabelSelector)?,
                    );
                }
            }
            Some(_) => {
                return Err(SelectorError::MalformedLabelSelector(
                    "matchLabels must be an object".to_owned(),
                ));
            }
        }
        match object.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(expressions)) => {
                for expression in expressions {
                    requirements.push(expression_requirement(expression)?);
                }
            }
            Some(_) => {
                return Err(SelectorError::MalformedLabelSelector(
                    "matchExpressions must be a list".to_owned(),
                ));
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// True when the selector matches everything (no requirements). `nothing()` is not empty.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`LabelSelector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// `Selector.RequiresExactMatch`: the single value `key` must have (from `=`, `==` or a
    /// one-value `in`) when the selector pins it.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == key)?;
        match (requirement.operator, requirement.values.as_slice()) {
            (LabelOperator::Equals | LabelOperator::DoubleEquals | LabelOperator::In, [value]) => {
                Some(value)
            }
            _ => None,
        }
    }
}

/// `Selector.String()`: requirements joined by `,` (empty for everything and for nothing);
/// `metav1.FormatLabelSelector` additionally shows an empty result as `<none>`.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Labels of an object (`metadata.labels`); non-string values are skipped.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// One `matchExpressions` entry to a requirement, as `LabelSelectorAsSelector` does.
fn expression_requirement(expression: &Value) -> Result<LabelRequirement, SelectorError> {
    let Value::Object(expression) = expression else {
        return Err(SelectorError::MalformedLabelSelector(
            "matchExpressions entries must be objects".to_owned(),
        ));
    };
    let field_str = |name: &str| -> Result<String, SelectorError> {
        match expression.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(SelectorError::MalformedLabelSelector(format!(
                "matchExpressions {name} must be a string"
            ))),
        }
    };
    let key = field_str("key")?;
    let operator = field_str("operator")?;
    let operator = match operator.as_str() {
        "In" => LabelOperator::In,
        "NotIn" => LabelOperator::NotIn,
        "Exists" => LabelOperator::Exists,
        "DoesNotExist" => LabelOperator::DoesNotExist,
        _ => return Err(SelectorError::UnknownOperator(operator)),
    };
    let values = match expression.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    SelectorError::MalformedLabelSelector(
                        "matchExpressions values must be strings".to_owned(),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(SelectorError::MalformedLabelSelector(
                "matchExpressions values must be a list".to_owned(),
            ));
        }
    };
    new_requirement(&key, operator, values).map_err(SelectorError::InvalidLabelSelector)
}

/// `labels.NewRequirement`: validates key, value count for the operator and each value,
/// reporting all problems like a field-error aggregate (`[a, b]` when several).
fn new_requirement(
    key: &str,
    operator: LabelOperator,
    values: Vec<String>,
) -> Result<LabelRequirement, String> {
    let mut errors: Vec<String> = Vec::new();
    if let Some(detail) = label_key_error(key) {
        errors.push(format!("key: Invalid value: {}: {detail}", go_quote(key)));
    }
    let count_error = |detail: &str| {
        format!(
            "values: Invalid value: {}: {detail}",
            go_string_slice(&values)
        )
    };
    match operator {
        LabelOperator::In | LabelOperator::NotIn => {
            if values.is_empty() {
                errors.push(count_error(
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        LabelOperator::Equals | LabelOperator::DoubleEquals | LabelOperator::NotEquals => {
            if values.len() != 1 {
                errors.push(count_error(
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        LabelOperator::Exists | LabelOperator::DoesNotExist => {
            if !values.is_empty() {
                errors.push(count_error(
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        LabelOperator::GreaterThan | LabelOperator::LessThan => {
            if values.len() != 1 {
                errors.push(count_error(
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    errors.push(format!(
                        "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                        go_quote(value)
                    ));
                }
            }
        }
    }
    for (i, value) in values.iter().enumerate() {
        if let Some(detail) = label_value_error(value) {
            errors.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {detail}",
                go_quote(value)
            ));
        }
    }
    if errors.is_empty() {
        Ok(LabelRequirement {
            key: key.to_owned(),
            operator,
            values,
        })
    } else {
        Err(aggregate(errors))
    }
}

/// `utilerrors.NewAggregate(...).Error()`: one message as is, several de-duplicated in `[…]`.
fn aggregate(mut errors: Vec<String>) -> String {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.clone()));
    if errors.len() == 1 {
        errors.remove(0)
    } else {
        format!("[{}]", errors.join(", "))
    }
}

// --- Lexer and parser of the label selector syntax ------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

#[derive(Debug, Clone)]
struct Item {
    token: Token,
    literal: String,
}

/// Whether `in`/`notin` are operators (after a key) or plain identifiers (as values).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the selector into tokens the way upstream's byte lexer does: a NUL byte ends the
/// input, `!=` and `==` are the only two-character symbols, everything between symbols and
/// whitespace is an identifier (or the keywords `in` / `notin`).
fn lex(s: &str) -> Vec<Item> {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let mut items = Vec::new();
    let mut pos = 0;
    loop {
        while pos < end && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        if pos >= end {
            items.push(Item {
                token: Token::EndOfString,
                literal: String::new(),
            });
            return items;
        }
        let b = bytes[pos];
        if is_special(b) {
            let next = bytes.get(pos + 1).copied().filter(|_| pos + 1 < end);
            let (token, len) = match (b, next) {
                (b'!', Some(b'=')) => (Token::NotEquals, 2),
                (b'=', Some(b'=')) => (Token::DoubleEquals, 2),
                (b'!', _) => (Token::DoesNotExist, 1),
                (b'=', _) => (Token::Equals, 1),
                (b'(', _) => (Token::OpenPar, 1),
                (b')', _) => (Token::ClosedPar, 1),
                (b',', _) => (Token::Comma, 1),
                (b'>', _) => (Token::GreaterThan, 1),
                _ => (Token::LessThan, 1),
            };
            items.push(Item {
                token,
                literal: s[pos..pos + len].to_owned(),
            });
            pos += len;
        } else {
            let start = pos;
            while pos < end && !is_special(bytes[pos]) && !is_whitespace(bytes[pos]) {
                pos += 1;
            }
            // Boundaries are ASCII bytes, so the slice is valid UTF-8.
            let literal = s[start..pos].to_owned();
            let token = match literal.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier,
            };
            items.push(Item { token, literal });
        }
    }
}

struct Parser {
    items: Vec<Item>,
    position: usize,
}

impl Parser {
    fn item(&self, index: usize, context: Context) -> (Token, String) {
        // The lexer always ends with EndOfString; never read past it.
        let item = self
            .items
            .get(index)
            .or_else(|| self.items.last())
            .cloned()
            .unwrap_or(Item {
                token: Token::EndOfString,
                literal: String::new(),
            });
        let token = match (context, item.token) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            (_, token) => token,
        };
        (token, item.literal)
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.item(self.position, context);
        if self.position < self.items.len() {
            self.position += 1;
        }
        item
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<LabelRequirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = operator {
            return new_requirement(&key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            LabelOperator::In | LabelOperator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(&key, operator, values)
    }

    /// The key, plus `Exists`/`DoesNotExist` when the term has no operator of its own.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<LabelOperator>), String> {
        let (mut token, mut literal) = self.consume(Context::Values);
        let mut operator = None;
        if token == Token::DoesNotExist {
            operator = Some(LabelOperator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        if let Some(detail) = label_key_error(&literal) {
            // Upstream validates the key against a nil field path, hence the `<nil>`.
            return Err(format!(
                "<nil>: Invalid value: {}: {detail}",
                go_quote(&literal)
            ));
        }
        let (next, _) = self.lookahead(Context::Values);
        if operator.is_none() && matches!(next, Token::EndOfString | Token::Comma) {
            operator = Some(LabelOperator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<LabelOperator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => LabelOperator::In,
            Token::Equals => LabelOperator::Equals,
            Token::DoubleEquals => LabelOperator::DoubleEquals,
            Token::GreaterThan => LabelOperator::GreaterThan,
            Token::LessThan => LabelOperator::LessThan,
            Token::NotIn => LabelOperator::NotIn,
            Token::NotEquals => LabelOperator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `( a, b, … )`; the values come back sorted and de-duplicated (upstream uses a set).
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// The inside of `( … )`, stopping before `)`. Empty slots (`(,a)`, `(a,)`, `(a,,b)`)
    /// stand for the empty value, as in apimachinery v0.32.
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values = std::collections::BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values.into_iter().collect()),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.insert(String::new());
                        return Ok(values.into_iter().collect());
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        values.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; nothing before `,`/end means "".
    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if matches!(token, Token::EndOfString | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(vec![literal])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

// --- Label key / value validation (apimachinery `util/validation`) --------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// `validation.RegexError`: the message, examples and the regex, worded as upstream.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{message} (regex used for validation is '{format}')");
    }
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        examples.join(" or ")
    )
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
                ok(first) && ok(last) && bytes.iter().all(|b| ok(b) || *b == b'-')
            }
            _ => false,
        }
    })
}

/// `validation.IsQualifiedName` (label keys): `None` when valid, else the joined messages.
fn label_key_error(key: &str) -> Option<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                if prefix.len() > 253 {
                    errors.push("prefix part must be no more than 253 characters".to_owned());
                }
                if !is_dns1123_subdomain(prefix) {
                    errors.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_ERR,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            return Some(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// `validation.IsValidLabelValue`: `None` when valid, else the joined messages.
fn label_value_error(value: &str) -> Option<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_owned());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Go's `%#v` of a `[]string` (how `field.Invalid` prints a bad value list).
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        // Upstream copies the values with `append([]string(nil), …)`, so empty is nil.
        return "[]string(nil)".to_owned();
    }
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

/// The operator of a field requirement; field selectors know only equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    Equals,
    NotEquals,
}

/// One `field=value` / `field!=value` term, with the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

/// A parsed `fieldSelector`: the AND of its requirements (sorted as upstream sorts the terms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// `fields.ParseSelector`: terms split on unescaped `,`; each term is `f=v`, `f==v` or
    /// `f!=v` (the first operator found wins); values may escape `\`, `,` and `=` with `\`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, op, raw_value)) = split_term(term) else {
                return Err(SelectorError::InvalidFieldTerm {
                    selector: s.to_owned(),
                    term: term.to_owned(),
                });
            };
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                op,
                value: unescape_value(raw_value)?,
            });
        }
        Ok(Self { requirements })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when every requirement holds; `value_of` gives an object's value for a field label
    /// (empty for an absent field, as upstream's `fields.Set.Get`).
    pub fn matches(&self, value_of: impl Fn(&str) -> String) -> bool {
        self.requirements.iter().all(|r| {
            let actual = value_of(&r.field);
            match r.op {
                FieldOp::Equals => actual == r.value,
                FieldOp::NotEquals => actual != r.value,
            }
        })
    }

    /// `Some(name)` when the selector pins `metadata.name=NAME` (RBAC `resourceNames`,
    /// single-object watches such as `kubectl get pod x -w`).
    pub fn exact_name(&self) -> Option<&str> {
        self.requires_exact_match("metadata.name")
    }

    /// `Selector.RequiresExactMatch`: the value an `=`/`==` term demands for `field`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.op == FieldOp::Equals)
            .map(|r| r.value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// `Selector.String()`: terms joined by `,`, values escaped again.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.op {
                FieldOp::Equals => "=",
                FieldOp::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

/// `fields.EscapeValue`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas not preceded by an escaping backslash.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The leftmost operator of a term (trying `!=`, `==`, `=` at each position).
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, value));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(SelectorError::InvalidEscapeSequence(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscapeSequence("\\".to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(s: &str) -> LabelSelector {
        LabelSelector::parse(s).expect("selector parses")
    }

    fn parse_err(s: &str) -> String {
        LabelSelector::parse(s)
            .expect_err("selector is rejected")
            .to_string()
    }

    #[test]
    fn empty_label_selector_matches_everything() {
        let s = parse("");
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("a", "b")])));
        assert_eq!(s.to_string(), "");
        assert!(parse("   ").is_empty());
    }

    #[test]
    fn equality_operators_match_exact_values() {
        for s in ["app=web", "app==web", " app = web "] {
            let s = parse(s);
            assert!(s.matches(&labels(&[("app", "web")])));
            assert!(!s.matches(&labels(&[("app", "db")])));
            assert!(!s.matches(&labels(&[])));
        }
        assert_eq!(parse("app==web").to_string(), "app==web");
        assert_eq!(parse("app = web").to_string(), "app=web");
    }

    #[test]
    fn not_equals_and_notin_match_objects_lacking_the_key() {
        let ne = parse("app!=web");
        assert!(ne.matches(&labels(&[])));
        assert!(ne.matches(&labels(&[("app", "db")])));
        assert!(!ne.matches(&labels(&[("app", "web")])));
        let notin = parse("tier notin (a, b)");
        assert!(notin.matches(&labels(&[])));
        assert!(notin.matches(&labels(&[("tier", "c")])));
        assert!(!notin.matches(&labels(&[("tier", "b")])));
        assert_eq!(notin.to_string(), "tier notin (a,b)");
    }

    #[test]
    fn in_matches_any_listed_value() {
        let s = parse("tier in (b,a,a)");
        assert_eq!(s.requirements()[0].values, vec!["a", "b"]);
        assert!(s.matches(&labels(&[("tier", "a")])));
        assert!(!s.matches(&labels(&[("tier", "c")])));
        assert!(!s.matches(&labels(&[])));
        assert_eq!(s.to_string(), "tier in (a,b)");
        // `in` and `notin` are ordinary values inside the parentheses.
        assert!(parse("x in (in,notin)").matches(&labels(&[("x", "notin")])));
    }

    #[test]
    fn empty_slots_in_value_lists_mean_the_empty_value() {
        assert_eq!(parse("x in ()").requirements()[0].values, vec![""]);
        assert_eq!(parse("x in (,a)").requirements()[0].values, vec!["", "a"]);
        assert_eq!(parse("x in (a,)").requirements()[0].values, vec!["", "a"]);
        assert_eq!(
            parse("x in (a,,b)").requirements()[0].values,
            vec!["", "a", "b"]
        );
        assert!(parse("x=").matches(&labels(&[("x", "")])));
    }

    #[test]
    fn exists_and_does_not_exist() {
        let s = parse("app,!canary");
        assert!(s.matches(&labels(&[("app", "x")])));
        assert!(!s.matches(&labels(&[("app", "x"), ("canary", "")])));
        assert!(!s.matches(&labels(&[])));
        assert_eq!(s.to_string(), "app,!canary");
    }

    #[test]
    fn greater_and_less_than_compare_integers() {
        let s = parse("gen>5,gen<10");
        assert!(s.matches(&labels(&[("gen", "7")])));
        assert!(!s.matches(&labels(&[("gen", "5")])));
        assert!(!s.matches(&labels(&[("gen", "10")])));
        assert!(!s.matches(&labels(&[("gen", "seven")])));
        assert!(!s.matches(&labels(&[])));
        assert_eq!(s.to_string(), "gen>5,gen<10");
    }

    #[test]
    fn requirements_are_sorted_by_key_in_canonical_string() {
        let s = parse("tier in (b,a),app=ubu");
        assert_eq!(s.to_string(), "app=ubu,tier in (a,b)");
        assert_eq!(s.requires_exact_match("app"), Some("ubu"));
        assert_eq!(s.requires_exact_match("tier"), None);
    }

    #[test]
    fn prefixed_keys_are_accepted() {
        let s = parse("app.kubernetes.io/name=web,batch.kubernetes.io/job-name");
        assert!(s.matches(&labels(&[
            ("app.kubernetes.io/name", "web"),
            ("batch.kubernetes.io/job-name", "j")
        ])));
    }

    #[test]
    fn syntax_errors_are_worded_like_labels_parse() {
        assert_eq!(
            parse_err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(parse_err("a,"), "found '', expected: identifier after ','");
        assert_eq!(
            parse_err("a=b c"),
            "found 'c', expected: ',' or 'end of string'"
        );
        assert_eq!(
            parse_err("=a"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            parse_err("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            parse_err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            parse_err("a in (b,,)"),
            "unable to parse requirement: found ')', expected: ',', or identifier"
        );
        assert_eq!(
            parse_err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            parse_err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(
            parse_err("!a=b"),
            "found '=', expected: ',' or 'end of string'"
        );
    }

    #[test]
    fn invalid_keys_and_values_are_rejected_with_validation_text() {
        assert_eq!(
            parse_err("-a=b"),
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            parse_err("app=-web"),
            "unable to parse requirement: values[0][app]: Invalid value: \"-web\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert_eq!(
            parse_err("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert!(parse_err("Bad_Prefix/a=b").starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"Bad_Prefix/a\": prefix part a lowercase RFC 1123 subdomain"
        ));
        assert!(parse_err("a/b/c").contains("a qualified name must consist of"));
        assert!(
            parse_err(&format!("k={}", "v".repeat(64)))
                .contains("must be no more than 63 characters")
        );
    }

    #[test]
    fn from_json_combines_match_labels_and_expressions() {
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "ubu"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"}
            ]
        }))
        .expect("valid selector");
        assert_eq!(
            s.to_string(),
            "app=ubu,!canary,env notin (prod),team,tier in (a,b)"
        );
        assert!(s.matches(&labels(&[("app", "ubu"), ("tier", "a"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "ubu"), ("tier", "a")])));
    }

    #[test]
    fn from_json_null_matches_nothing_and_empty_matches_everything() {
        let nothing = LabelSelector::from_json(&Value::Null).expect("null is valid");
        assert!(!nothing.matches(&labels(&[])));
        assert!(!nothing.is_empty());
        assert!(nothing.matches_nothing());
        let everything = LabelSelector::from_json(&json!({})).expect("{} is valid");
        assert!(everything.is_empty());
        assert!(everything.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn from_json_rejects_bad_operators_and_values() {
        let err = |v: Value| {
            LabelSelector::from_json(&v)
                .expect_err("rejected")
                .to_string()
        };
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})),
            "\"Gt\" is not a valid label selector operator"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
        );
        assert!(
            err(json!({"matchLabels": {"a b": "-"}})).starts_with("[key: Invalid value: \"a b\"")
        );
        assert!(err(json!({"matchLabels": {"a": 1}})).starts_with("invalid label selector"));
        assert!(err(json!("app=x")).starts_with("invalid label selector"));
    }

    #[test]
    fn labels_of_skips_non_string_values() {
        let object = json!({"metadata": {"labels": {"a": "1", "b": 2, "c": null}}});
        assert_eq!(labels_of(&object), labels(&[("a", "1")]));
        assert!(labels_of(&json!({})).is_empty());
    }

    #[test]
    fn from_labels_builds_equality_selector() {
        let s = LabelSelector::from_labels(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
    }

    #[test]
    fn field_selector_equality_and_inequality() {
        let s = FieldSelector::parse("status.phase!=Running,spec.nodeName==n1,metadata.name=x")
            .expect("valid");
        assert_eq!(s.requirements().len(), 3);
        let object = |field: &str| match field {
            "status.phase" => "Pending".to_owned(),
            "spec.nodeName" => "n1".to_owned(),
            "metadata.name" => "x".to_owned(),
            _ => String::new(),
        };
        assert!(s.matches(object));
        assert!(!s.matches(|f: &str| if f == "status.phase" {
            "Running".to_owned()
        } else {
            object(f)
        }));
        assert_eq!(s.exact_name(), Some("x"));
        assert_eq!(
            s.to_string(),
            "metadata.name=x,spec.nodeName=n1,status.phase!=Running"
        );
    }

    #[test]
    fn field_selector_empty_matches_everything() {
        let s = FieldSelector::parse("").expect("valid");
        assert!(s.is_empty());
        assert!(s.matches(|_| String::new()));
        assert_eq!(s.exact_name(), None);
        assert!(FieldSelector::parse(",,").expect("valid").is_empty());
    }

    #[test]
    fn field_selector_not_equals_name_is_not_exact() {
        let s = FieldSelector::parse("metadata.name!=x").expect("valid");
        assert_eq!(s.exact_name(), None);
    }

    #[test]
    fn field_selector_values_unescape() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").expect("valid");
        assert_eq!(s.requirements()[0].value, r"a,b=c\d");
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d");
        // The escaped comma does not split the term.
        assert_eq!(s.requirements().len(), 1);
    }

    #[test]
    fn field_selector_errors_are_worded_like_upstream() {
        let err = |s: &str| FieldSelector::parse(s).expect_err("rejected").to_string();
        assert_eq!(
            err("a=b,foo"),
            "invalid selector: 'a=b,foo'; can't understand 'foo'"
        );
        assert_eq!(
            err("a=b=c"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            err(r"a=b\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            err(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            err("a<b"),
            "invalid selector: 'a<b'; can't understand 'a<b'"
        );
    }
}
