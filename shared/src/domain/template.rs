//! Message templates: email (subject, html, text) and SMS (body), written in
//! minijinja's Jinja syntax. Templates are user input, so the engine is
//! sandboxed (no loader, so no file access; no env access; no macros), every
//! render is bounded by fuel and its output by size, and only the variables
//! below are accepted when a template is saved. Values are HTML-escaped in
//! the html part only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::contact::Contact;
use super::list::Channel;
use super::normalize;
use crate::{Error, Result};

/// The variables a template may use; any label is `labels.<key>`.
pub const VARIABLES: [&str; 8] = [
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "labels",
    "unsubscribe_url",
];

/// Engine instructions one part may take to render (a loop over a large
/// range runs out, and the send reports it, instead of hanging a worker).
const FUEL: u64 = 50_000;
/// Largest source of one part, and of one rendered part.
pub const MAX_PART_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Subject,
    Html,
    Text,
    Body,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
            Part::Body => "body",
        }
    }

    fn escape(self) -> AutoEscape {
        match self {
            Part::Html => AutoEscape::Html,
            _ => AutoEscape::None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub channel: Channel,
    /// Email only.
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    /// SMS only.
    pub body: Option<String>,
    /// Starter templates every project has; they cannot be changed or deleted.
    #[serde(default)]
    pub system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Template {
    /// The template's parts that are set, in sending order.
    pub fn parts(&self) -> Vec<(Part, &str)> {
        [
            (Part::Subject, &self.subject),
            (Part::Html, &self.html),
            (Part::Text, &self.text),
            (Part::Body, &self.body),
        ]
        .into_iter()
        .filter_map(|(part, src)| src.as_deref().map(|s| (part, s)))
        .collect()
    }
}

/// Create or update: absent fields are left alone, `null` clears a part.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: Option<String>,
    pub channel: Option<Channel>,
    #[serde(default, deserialize_with = "super::contact::patch")]
    #[schema(value_type = Option<String>)]
    pub subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::contact::patch")]
    #[schema(value_type = Option<String>)]
    pub html: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::contact::patch")]
    #[schema(value_type = Option<String>)]
    pub text: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::contact::patch")]
    #[schema(value_type = Option<String>)]
    pub body: Option<Option<String>>,
}

impl TemplateInput {
    /// The template this input makes of `old` (or a new one), checked whole:
    /// the parts its channel needs, and every part compiled.
    pub fn apply(self, old: Option<&Template>, id: String, now: DateTime<Utc>) -> Result<Template> {
        if let Some(old) = old {
            if self.channel.is_some_and(|c| c != old.channel) {
                return Err(Error::invalid("channel", "a template's channel cannot change"));
            }
        }
        let channel = match (self.channel, old) {
            (Some(c), _) => c,
            (None, Some(old)) => old.channel,
            (None, None) => return Err(Error::invalid("channel", "channel is email or sms")),
        };
        let name = match (self.name, old) {
            (Some(n), _) => normalize::text(&n).ok_or_else(|| Error::invalid("name", "name cannot be empty"))?,
            (None, Some(old)) => old.name.clone(),
            (None, None) => return Err(Error::invalid("name", "name is required")),
        };
        if name.chars().count() > 200 {
            return Err(Error::invalid("name", "name is at most 200 characters"));
        }
        let merge = |new: Option<Option<String>>, old: Option<&String>| match new {
            Some(v) => v.filter(|s| !s.trim().is_empty()),
            None => old.cloned(),
        };
        let t = Template {
            subject: merge(self.subject, old.and_then(|o| o.subject.as_ref())),
            html: merge(self.html, old.and_then(|o| o.html.as_ref())),
            text: merge(self.text, old.and_then(|o| o.text.as_ref())),
            body: merge(self.body, old.and_then(|o| o.body.as_ref())),
            id,
            name,
            channel,
            system: false,
            created_at: old.map_or(now, |o| o.created_at),
            updated_at: now,
        };
        check_parts(&t)?;
        Ok(t)
    }
}

/// The parts a channel takes, each compiled and its variables checked.
pub fn check_parts(t: &Template) -> Result<()> {
    match t.channel {
        Channel::Email => {
            if t.body.is_some() {
                return Err(Error::invalid("body", "email templates have subject, html and text"));
            }
            if t.subject.is_none() {
                return Err(Error::invalid("subject", "an email template needs a subject"));
            }
            if t.html.is_none() && t.text.is_none() {
                return Err(Error::invalid("html", "an email template needs html or text (or both)"));
            }
        }
        Channel::Sms => {
            for part in [Part::Subject, Part::Html, Part::Text] {
                if t.parts().iter().any(|(p, _)| *p == part) {
                    return Err(Error::invalid(part.as_str(), "SMS templates have a body only"));
                }
            }
            if t.body.is_none() {
                return Err(Error::invalid("body", "an SMS template needs a body"));
            }
        }
    }
    for (part, src) in t.parts() {
        check_part(part, src)?;
    }
    Ok(())
}

/// Compiles one part and refuses variables outside [`VARIABLES`], naming the
/// part, line and column.
pub fn check_part(part: Part, src: &str) -> Result<()> {
    if src.len() > MAX_PART_BYTES {
        return Err(Error::invalid(
            part.as_str(),
            format!("{} is at most {MAX_PART_BYTES} bytes", part.as_str()),
        ));
    }
    let env = environment();
    let template = env
        .template_from_named_str(part.as_str(), src)
        .map_err(|e| template_error(part, src, &e))?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|v| !known_variable(v) && !env.globals().any(|(g, _)| Some(g) == v.split('.').next()))
        .collect();
    unknown.sort();
    if let Some(var) = unknown.first() {
        let (line, column) = position_of(src, var.split('.').next().unwrap_or(var));
        return Err(Error::invalid(
            part.as_str(),
            format!(
                "line {line}, column {column}: unknown variable `{var}` (known: {}, and labels.<key>)",
                VARIABLES.join(", ")
            ),
        ));
    }
    Ok(())
}

fn known_variable(v: &str) -> bool {
    let mut path = v.split('.');
    let root = path.next().unwrap_or_default();
    match root {
        "labels" => path.count() <= 1,
        _ => VARIABLES.contains(&root) && path.next().is_none(),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| match name {
        "html" => Part::Html.escape(),
        _ => AutoEscape::None,
    });
    // Missing values print as nothing, and `default(…)` fills them.
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(32);
    env
}

/// `part: line L, column C: what is wrong`.
fn template_error(part: Part, src: &str, e: &minijinja::Error) -> Error {
    let line = e.line().unwrap_or(1);
    let column = e
        .range()
        .map(|r| {
            let start = r.start.min(src.len());
            let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
            src[line_start..start].chars().count() + 1
        })
        .unwrap_or(1);
    let detail = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
    Error::invalid(
        part.as_str(),
        format!("line {line}, column {column}: {}: {detail}", e.kind()),
    )
}

/// Where a variable first appears (1-based), for an error message.
fn position_of(src: &str, name: &str) -> (usize, usize) {
    let at = src
        .match_indices(name)
        .find(|(i, _)| {
            let before = src[..*i].chars().next_back();
            let after = src[i + name.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        })
        .map_or(0, |(i, _)| i);
    let line = src[..at].matches('\n').count() + 1;
    let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, src[line_start..at].chars().count() + 1)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The values a template sees for one recipient. A missing value is left
/// out, so that `default(…)` applies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Variables {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}

impl Variables {
    pub fn of(contact: &Contact) -> Self {
        let contact = contact.clone().with_derived();
        Variables {
            name: contact.full_name,
            first_name: contact.first_name,
            last_name: contact.last_name,
            email: contact.email,
            phone: contact.phone,
            company: contact.company,
            labels: contact.labels,
            unsubscribe_url: None,
        }
    }
}

/// Every part of a template, rendered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rendered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// A template compiled once, rendered for many recipients.
pub struct Compiled<'a> {
    env: Environment<'a>,
    parts: Vec<Part>,
}

impl<'a> Compiled<'a> {
    pub fn new(t: &'a Template) -> Result<Self> {
        let mut env = environment();
        let mut parts = Vec::new();
        for (part, src) in t.parts() {
            env.add_template(part.as_str(), src)
                .map_err(|e| template_error(part, src, &e))?;
            parts.push(part);
        }
        Ok(Compiled { env, parts })
    }

    /// Every part for these values. An error (out of fuel, output too
    /// large) names the part; nothing partial is returned.
    pub fn render(&self, vars: &Variables) -> Result<Rendered> {
        let ctx = Value::from_serialize(vars);
        let mut out = Rendered::default();
        for part in &self.parts {
            let text = self
                .env
                .get_template(part.as_str())
                .and_then(|t| t.render(&ctx))
                .map_err(|e| Error::invalid(part.as_str(), format!("cannot render {}: {e}", part.as_str())))?;
            if text.len() > MAX_PART_BYTES {
                return Err(Error::invalid(
                    part.as_str(),
                    format!("{} renders to more than {MAX_PART_BYTES} bytes", part.as_str()),
                ));
            }
            let slot = match part {
                Part::Subject => &mut out.subject,
                Part::Html => &mut out.html,
                Part::Text => &mut out.text,
                Part::Body => &mut out.body,
            };
            // A subject is one line: a value with a line break would end the header.
            *slot = Some(match part {
                Part::Subject => text.replace(['\r', '\n'], " "),
                _ => text,
            });
        }
        Ok(out)
    }
}

/// Templates every project has, read-only, with fixed ids.
pub fn starters() -> Vec<Template> {
    let at = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
    let email = |id: &str, name: &str, subject: &str, html: &str, text: &str| Template {
        id: id.into(),
        name: name.into(),
        channel: Channel::Email,
        subject: Some(subject.into()),
        html: Some(html.into()),
        text: Some(text.into()),
        body: None,
        system: true,
        created_at: at,
        updated_at: at,
    };
    vec![
        email(
            "00000000000000000000000001",
            "Welcome",
            "Welcome, {{ first_name | default(\"there\") }}!",
            "<p>Hi {{ first_name | default(\"there\") }},</p>\n<p>Thanks for joining us. We will keep you posted.</p>\n<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
            "Hi {{ first_name | default(\"there\") }},\n\nThanks for joining us. We will keep you posted.\n\nUnsubscribe: {{ unsubscribe_url }}",
        ),
        email(
            "00000000000000000000000002",
            "Newsletter",
            "News for {{ company | default(\"you\") }}",
            "<p>Hello {{ name | default(\"there\") }},</p>\n<p>Here is what is new.</p>\n<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
            "Hello {{ name | default(\"there\") }},\n\nHere is what is new.\n\nUnsubscribe: {{ unsubscribe_url }}",
        ),
        Template {
            id: "00000000000000000000000003".into(),
            name: "SMS reminder".into(),
            channel: Channel::Sms,
            subject: None,
            html: None,
            text: None,
            body: Some("Hi {{ first_name | default(\"there\") }}, a quick reminder from us. Reply STOP to opt out.".into()),
            system: true,
            created_at: at,
            updated_at: at,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn email(subject: &str, html: &str, text: &str) -> Template {
        TemplateInput {
            name: Some("T".into()),
            channel: Some(Channel::Email),
            subject: Some(Some(subject.into())),
            html: Some(Some(html.into())),
            text: Some(Some(text.into())),
            body: None,
        }
        .apply(None, "id".into(), Utc::now())
        .unwrap()
    }

    fn vars() -> Variables {
        Variables {
            first_name: Some("<Ann>".into()),
            company: Some("A & B".into()),
            labels: BTreeMap::from([("plan".into(), "pro".into())]),
            ..Default::default()
        }
    }

    fn field_and_message(r: Result<()>) -> (String, String) {
        match r {
            Err(Error::Validation { field, message }) => (field.unwrap_or_default(), message),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn values_are_escaped_in_html_only() {
        let t = email(
            "Hi {{ first_name }} of {{ company }}",
            "<b>{{ first_name }}</b> {{ labels.plan }}",
            "{{ first_name }} & {{ company }}",
        );
        let r = Compiled::new(&t).unwrap().render(&vars()).unwrap();
        assert_eq!(r.subject.as_deref(), Some("Hi <Ann> of A & B"));
        assert_eq!(r.html.as_deref(), Some("<b>&lt;Ann&gt;</b> pro"));
        assert_eq!(r.text.as_deref(), Some("<Ann> & A & B"));
    }

    #[test]
    fn defaults_fill_missing_values() {
        let t = email(
            "{{ last_name | default(\"friend\") }}",
            "{{ labels.tier | default(\"free\") }}",
            "[{{ email }}]",
        );
        let r = Compiled::new(&t).unwrap().render(&vars()).unwrap();
        assert_eq!(r.subject.as_deref(), Some("friend"));
        assert_eq!(r.html.as_deref(), Some("free"));
        assert_eq!(r.text.as_deref(), Some("[]"));
    }

    #[test]
    fn syntax_errors_name_part_line_and_column() {
        let (field, message) = field_and_message(check_part(Part::Html, "<p>ok</p>\n<p>{{ first_name </p>"));
        assert_eq!(field, "html");
        assert!(message.starts_with("line 2, column "), "{message}");
        let (field, message) = field_and_message(check_part(Part::Text, "a\nb {% if %}"));
        assert_eq!(field, "text");
        assert!(message.starts_with("line 2,"), "{message}");
    }

    #[test]
    fn unknown_variables_are_refused_with_their_place() {
        let (field, message) = field_and_message(check_part(Part::Subject, "Hi {{ first_name }}\n  {{ secret }}"));
        assert_eq!(field, "subject");
        assert!(
            message.starts_with("line 2, column 6: unknown variable `secret`"),
            "{message}"
        );
        let (_, message) = field_and_message(check_part(Part::Body, "{{ email.domain }}"));
        assert!(message.contains("`email.domain`"), "{message}");
        check_part(
            Part::Body,
            "{{ labels.plan }} {{ labels }} {% for x in [1, 2] %}{{ x }}{% endfor %}",
        )
        .unwrap();
        check_part(Part::Body, "{% set who = first_name %}{{ who }}").unwrap();
    }

    #[test]
    fn no_file_or_environment_access() {
        for src in [
            "{% include \"/etc/passwd\" %}",
            "{% extends \"base\" %}",
            "{% import \"x\" as y %}",
        ] {
            let t = Template {
                body: Some(src.into()),
                ..email("s", "h", "t")
            };
            let err = Compiled::new(&t).and_then(|c| c.render(&vars()));
            assert!(err.is_err(), "{src} rendered");
        }
        // Macros are not compiled in.
        assert!(check_part(Part::Text, "{% macro m() %}x{% endmacro %}{{ m() }}").is_err());
    }

    #[test]
    fn rendering_is_bounded() {
        let t = email(
            "s",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "t",
        );
        let err = Compiled::new(&t).unwrap().render(&vars()).unwrap_err();
        assert!(matches!(err, Error::Validation { field: Some(f), .. } if f == "html"));
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let t = email("Hi {{ first_name }}", "h", "t");
        let v = Variables {
            first_name: Some("Ann\r\nBcc: x@evil.test".into()),
            ..Default::default()
        };
        let r = Compiled::new(&t).unwrap().render(&v).unwrap();
        assert_eq!(r.subject.as_deref(), Some("Hi Ann  Bcc: x@evil.test"));
    }

    #[test]
    fn channels_take_their_parts() {
        let sms = TemplateInput {
            name: Some("S".into()),
            channel: Some(Channel::Sms),
            subject: Some(Some("x".into())),
            body: Some(Some("hi".into())),
            ..Default::default()
        };
        let (field, _) = field_and_message(sms.apply(None, "id".into(), Utc::now()).map(|_| ()));
        assert_eq!(field, "subject");
        let no_body = TemplateInput {
            name: Some("E".into()),
            channel: Some(Channel::Email),
            subject: Some(Some("x".into())),
            ..Default::default()
        };
        let (field, _) = field_and_message(no_body.apply(None, "id".into(), Utc::now()).map(|_| ()));
        assert_eq!(field, "html");
    }

    #[test]
    fn starters_compile() {
        for t in starters() {
            check_parts(&t).unwrap();
            Compiled::new(&t).unwrap().render(&vars()).unwrap();
        }
    }

    proptest! {
        /// Whatever a person's name holds, the html part never carries it unescaped.
        #[test]
        fn html_never_carries_markup_from_values(name in "\\PC{0,40}") {
            let t = email("s", "<p>{{ first_name }}</p>", "{{ first_name }}");
            let v = Variables { first_name: Some(name.clone()), ..Default::default() };
            let r = Compiled::new(&t).unwrap().render(&v).unwrap();
            let html = r.html.unwrap();
            let inner = &html[3..html.len() - 4];
            prop_assert!(!inner.contains(['<', '>', '"']));
            prop_assert_eq!(r.text.unwrap(), name);
        }
    }
}
