//! Templates rendered per second on one core for a realistic email (a
//! subject, about 5 KB of html, a text part, 6 variables), against a floor:
//! the same output built with `format!` (and the html escaping done by hand)
//! in the same run. Usage: render-throughput [SECONDS] → one JSON line.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use roster::domain::list::Channel;
use roster::domain::template::{Compiled, Template, Variables};

fn paragraph(i: usize) -> String {
    format!(
        "<tr><td style=\"padding:12px;font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:22px;color:#333\">\
         Section {i}: here is what changed this month, what is coming next, and how to get the most out of it.</td></tr>\n"
    )
}

fn html_source() -> String {
    let mut html = String::from(
        "<html><body><table width=\"600\" cellpadding=\"0\" cellspacing=\"0\">\n<tr><td><h1>Hello {{ first_name | default(\"there\") }}!</h1>\
         <p>News for {{ company }} on the {{ labels.plan }} plan.</p></td></tr>\n",
    );
    while html.len() < 5 * 1024 {
        html.push_str(&paragraph(html.len()));
    }
    html.push_str("<tr><td><p>Sent to {{ email }}. <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></td></tr></table></body></html>");
    html
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '/' => out.push_str("&#x2f;"),
            c => out.push(c),
        }
    }
    out
}

fn vars(i: usize) -> Variables {
    Variables {
        name: Some(format!("Ada Lovelace {i}")),
        first_name: Some(format!("Ada{i}")),
        last_name: Some("Lovelace".into()),
        email: Some(format!("ada{i}@example.com")),
        phone: None,
        company: Some("Analytical & Co".into()),
        labels: BTreeMap::from([("plan".to_string(), "pro".to_string())]),
        unsubscribe_url: Some(format!("https://api.example.com/v1/unsubscribe/token{i}")),
    }
}

/// Runs `f` for `secs`, returning calls per second.
fn rate(secs: f64, mut f: impl FnMut(usize) -> usize) -> (f64, usize) {
    let start = Instant::now();
    let (mut n, mut bytes) = (0usize, 0usize);
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for _ in 0..100 {
            bytes += f(n);
            n += 1;
        }
    }
    (n as f64 / start.elapsed().as_secs_f64(), bytes / n.max(1))
}

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let html = html_source();
    let text = "Hello {{ first_name | default(\"there\") }},\n\nNews for {{ company }} on the {{ labels.plan }} plan.\n\nSent to {{ email }}. Unsubscribe: {{ unsubscribe_url }}\n".to_string();
    let now = chrono::Utc::now();
    let t = Template {
        id: "bench".into(),
        name: "bench".into(),
        channel: Channel::Email,
        subject: Some("{{ first_name | default(\"there\") }}, news for {{ company }}".into()),
        html: Some(html.clone()),
        text: Some(text),
        body: None,
        system: false,
        created_at: now,
        updated_at: now,
    };
    roster::domain::template::check_parts(&t).expect("the bench template is valid");
    let compiled = Compiled::new(&t).expect("compiles");
    // The floor builds the same three parts by hand: the html cut once into
    // its literal pieces, then each render pushes pieces and escaped values.
    let pieces: Vec<(String, Option<String>)> = {
        let mut out = Vec::new();
        let mut rest = html.as_str();
        while let Some(open) = rest.find("{{") {
            let close = rest[open..].find("}}").map(|c| open + c).unwrap();
            out.push((rest[..open].to_string(), Some(rest[open + 2..close].trim().to_string())));
            rest = &rest[close + 2..];
        }
        out.push((rest.to_string(), None));
        out
    };
    let floor_parts = |i: usize| {
        let v = vars(i);
        let first = v.first_name.clone().unwrap_or_else(|| "there".into());
        let company = v.company.clone().unwrap_or_default();
        let plan = v.labels.get("plan").cloned().unwrap_or_default();
        let email = v.email.clone().unwrap_or_default();
        let url = v.unsubscribe_url.clone().unwrap_or_default();
        let subject = format!("{first}, news for {company}");
        let mut html = String::with_capacity(6 * 1024);
        for (literal, var) in &pieces {
            html.push_str(literal);
            match var.as_deref() {
                Some("company") => html.push_str(&escape(&company)),
                Some("labels.plan") => html.push_str(&escape(&plan)),
                Some("email") => html.push_str(&escape(&email)),
                Some("unsubscribe_url") => html.push_str(&escape(&url)),
                Some(_) => html.push_str(&escape(&first)),
                None => {}
            }
        }
        // Like the engine, without the source's last newline.
        let text =
            format!("Hello {first},\n\nNews for {company} on the {plan} plan.\n\nSent to {email}. Unsubscribe: {url}");
        (subject, html, text)
    };
    let floor = |i: usize| {
        let (subject, html, text) = floor_parts(i);
        black_box(subject.len() + html.len() + text.len())
    };
    let engine = |i: usize| {
        let r = compiled.render(&vars(i)).expect("renders");
        black_box(r.subject.map_or(0, |s| s.len()) + r.html.map_or(0, |s| s.len()) + r.text.map_or(0, |s| s.len()))
    };
    // Both build the variables for each render, and make the same output.
    let check = compiled.render(&vars(7)).unwrap();
    let (subject, html_out, text_out) = floor_parts(7);
    assert_eq!(
        (check.subject, check.html, check.text),
        (Some(subject), Some(html_out), Some(text_out))
    );
    let (floor_rate, bytes) = rate(secs, floor);
    let (engine_rate, _) = rate(secs, engine);
    println!(
        "{}",
        serde_json::json!({
            "html_bytes": html.len(),
            "output_bytes": bytes,
            "variables": 6,
            "engine_per_sec": engine_rate.round(),
            "floor_per_sec": floor_rate.round(),
            "ratio": (engine_rate / floor_rate * 1000.0).round() / 1000.0,
            "engine_us": (1e6 / engine_rate * 10.0).round() / 10.0,
            "floor_us": (1e6 / floor_rate * 10.0).round() / 10.0,
        })
    );
}
