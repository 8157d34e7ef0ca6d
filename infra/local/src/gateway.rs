//! API Gateway's HTTP API in front of the HTTP functions, as `template.yaml`
//! wires them: each request goes to the function whose route API Gateway
//! would choose, so a route missing from the template fails here as it
//! would in AWS.
//!
//! API Gateway's order (its HTTP API route evaluation): a full match of the
//! path (literal segments and `{var}`s) before a match through a greedy
//! `{proxy+}`; among those, the most specific (here: more literal segments,
//! then more segments); a method named before `ANY`.

use std::convert::Infallible;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Literal(String),
    Var,
    Greedy,
}

/// One `Type: HttpApi` event: its method (`None` for `ANY`) and path.
#[derive(Clone, Debug)]
pub struct Route {
    method: Option<Method>,
    segments: Vec<Segment>,
    /// The function's binary (`BuildProperties.Binary`).
    pub binary: String,
}

impl Route {
    /// From the event's `Method` and `Path`; `None` for what an HTTP API
    /// refuses (a greedy variable before the end, an unknown method).
    pub fn parse(method: &str, path: &str, binary: &str) -> Option<Route> {
        let method = match method.to_ascii_uppercase().as_str() {
            "ANY" => None,
            m => Some(Method::from_bytes(m.as_bytes()).ok()?),
        };
        let segments: Vec<Segment> = path
            .strip_prefix('/')?
            .split('/')
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if name.ends_with('+') => Segment::Greedy,
                Some(_) => Segment::Var,
                None => Segment::Literal(s.to_string()),
            })
            .collect();
        let greedy_inside = segments[..segments.len() - 1].contains(&Segment::Greedy);
        (!greedy_inside).then(|| Route {
            method,
            segments,
            binary: binary.to_string(),
        })
    }

    fn is_greedy(&self) -> bool {
        self.segments.last() == Some(&Segment::Greedy)
    }

    fn matches(&self, method: &Method, path: &[&str]) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let fixed = if self.is_greedy() {
            &self.segments[..self.segments.len() - 1]
        } else {
            &self.segments[..]
        };
        // A greedy variable takes what is left, which must not be empty.
        let lengths_fit = if self.is_greedy() {
            path.len() > fixed.len() && path[fixed.len()..].iter().any(|p| !p.is_empty())
        } else {
            path.len() == fixed.len()
        };
        lengths_fit
            && fixed.iter().zip(path).all(|(s, p)| match s {
                Segment::Literal(l) => l == p,
                Segment::Var => !p.is_empty(),
                Segment::Greedy => false,
            })
    }

    /// Higher is chosen first.
    fn rank(&self) -> (bool, usize, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (!self.is_greedy(), literals, self.segments.len(), self.method.is_some())
    }
}

/// The route API Gateway would choose, if any.
pub fn choose<'a>(routes: &'a [Route], method: &Method, path: &str) -> Option<&'a Route> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    routes
        .iter()
        .filter(|r| r.matches(method, &segments))
        .max_by_key(|r| r.rank())
}

/// Serves `routes`, each request by the router of the function chosen;
/// `{"message":"Not Found"}` (as API Gateway answers) where none is.
pub fn router(routes: Vec<Route>, functions: Vec<(String, Router)>) -> Router {
    Router::new().fallback(move |req: Request| {
        let target = choose(&routes, req.method(), req.uri().path())
            .and_then(|r| functions.iter().find(|(b, _)| *b == r.binary))
            .map(|(_, f)| f.clone());
        async move {
            match target {
                Some(f) => f.oneshot(req).await.unwrap_or_else(|e: Infallible| match e {}),
                None => not_found(),
            }
        }
    })
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        r#"{"message":"Not Found"}"#,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[(&str, &str, &str)]) -> Vec<Route> {
        list.iter().map(|(m, p, b)| Route::parse(m, p, b).unwrap()).collect()
    }

    fn to(routes: &[Route], method: Method, path: &str) -> Option<String> {
        choose(routes, &method, path).map(|r| r.binary.clone())
    }

    #[test]
    fn the_most_specific_route_wins() {
        let r = routes(&[
            ("ANY", "/{proxy+}", "catch-all"),
            ("GET", "/pets/{id}", "one-pet"),
            ("ANY", "/pets/dog/{proxy+}", "dogs"),
            ("GET", "/pets/dog/1", "first-dog"),
            ("POST", "/pets/{id}", "post-pet"),
            ("ANY", "/pets/{id}/toys", "toys"),
            ("GET", "/pets/{id}/toys", "get-toys"),
        ]);
        assert_eq!(to(&r, Method::GET, "/pets/dog/1").as_deref(), Some("first-dog"));
        assert_eq!(to(&r, Method::GET, "/pets/dog/2").as_deref(), Some("dogs"));
        assert_eq!(to(&r, Method::GET, "/pets/dog").as_deref(), Some("one-pet"));
        assert_eq!(to(&r, Method::POST, "/pets/7").as_deref(), Some("post-pet"));
        assert_eq!(to(&r, Method::DELETE, "/pets/7").as_deref(), Some("catch-all"));
        assert_eq!(to(&r, Method::GET, "/pets/7/toys").as_deref(), Some("get-toys"));
        assert_eq!(to(&r, Method::PUT, "/pets/7/toys").as_deref(), Some("toys"));
        assert_eq!(to(&r, Method::GET, "/pets").as_deref(), Some("catch-all"));
        assert_eq!(to(&r, Method::GET, "/"), None);
    }

    #[test]
    fn a_greedy_variable_takes_one_segment_or_more() {
        let r = routes(&[("ANY", "/v1/public/{proxy+}", "public")]);
        assert_eq!(
            to(&r, Method::POST, "/v1/public/p1/waitlist").as_deref(),
            Some("public")
        );
        assert_eq!(to(&r, Method::POST, "/v1/public/p1").as_deref(), Some("public"));
        assert_eq!(to(&r, Method::POST, "/v1/public"), None);
        assert_eq!(to(&r, Method::POST, "/v1/public/"), None);
    }

    #[test]
    fn what_an_http_api_refuses_is_not_a_route() {
        assert!(Route::parse("ANY", "/{proxy+}/x", "b").is_none());
        assert!(Route::parse("GET", "no-slash", "b").is_none());
        assert!(Route::parse("G E T", "/x", "b").is_none());
    }
}
