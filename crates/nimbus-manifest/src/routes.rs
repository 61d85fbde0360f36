//! The neutral routing rules, shared by validation, the local router and the providers.
//!
//! A route is a method (or `ANY`) and a path of segments: a literal, a `{name}` parameter (one
//! segment) or a final greedy `{name+}` (one or more segments). When several routes match a
//! request, the most specific wins: segment by segment from the left, a literal beats a
//! parameter, which beats a greedy tail; then the longer path; then a named method beats `ANY`
//! ([`order_key`]). Every target resolves a request this way: AWS natively, the others through
//! the configuration Nimbus generates (see `docs/routing.md`).
//!
//! Two routes whose precedence the platforms do not agree on are refused by validation
//! ([`crossed`]): both can match one path and each is more specific than the other at some
//! segment (`/a/{x}/c` and `/a/b/{y}`).

use crate::types::{HttpMethod, RoutePath};

/// One segment of a route path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A literal segment.
    Literal(&'a str),
    /// `{name}`: one segment.
    Param(&'a str),
    /// `{name+}`: the rest of the path (one or more segments), always last.
    Greedy(&'a str),
}

impl Segment<'_> {
    /// 0 for a literal, 1 for a parameter, 2 for a greedy tail: lower is more specific.
    pub fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

/// The segments of `path` (a valid route path).
pub fn segments(path: &RoutePath) -> Vec<Segment<'_>> {
    path.segments()
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(name) => Segment::Greedy(name),
                    None => Segment::Param(name),
                },
                None => Segment::Literal(s),
            },
        )
        .collect()
}

/// The precedence key of a route: of two routes matching a request, the smaller key wins.
pub fn order_key(
    method: HttpMethod,
    path: &RoutePath,
) -> (Vec<u8>, std::cmp::Reverse<usize>, bool) {
    let segs = segments(path);
    (
        segs.iter().map(Segment::rank).collect(),
        std::cmp::Reverse(segs.len()),
        method == HttpMethod::Any,
    )
}

/// Whether some request path matches both `a` and `b`.
pub fn overlap(a: &RoutePath, b: &RoutePath) -> bool {
    let (a, b) = (segments(a), segments(b));
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => return true,
            // a greedy tail takes one or more segments: the other needs one more at least
            (Some(Segment::Greedy(_)), Some(_)) | (Some(_), Some(Segment::Greedy(_))) => {
                return true;
            }
            (Some(_), None) | (None, Some(_)) => return false,
            (Some(Segment::Literal(x)), Some(Segment::Literal(y))) if x != y => return false,
            _ => i += 1,
        }
    }
}

/// The segment ranks of `path` over `len` positions, a greedy tail's rank repeated to the end.
fn ranks(path: &RoutePath, len: usize) -> Vec<u8> {
    let segs = segments(path);
    (0..len)
        .map(|i| match segs.get(i) {
            Some(s) => s.rank(),
            None => 2,
        })
        .collect()
}

/// Whether `a` and `b` overlap and each is more specific than the other at some segment, so
/// that which one serves a request shared by both is the platform's choice (refused).
pub fn crossed(a: &RoutePath, b: &RoutePath) -> bool {
    if !overlap(a, b) {
        return false;
    }
    let len = a.segments().count().max(b.segments().count());
    let (ra, rb) = (ranks(a, len), ranks(b, len));
    let a_wins_somewhere = ra.iter().zip(&rb).any(|(x, y)| x < y);
    let b_wins_somewhere = ra.iter().zip(&rb).any(|(x, y)| x > y);
    a_wins_somewhere && b_wins_somewhere
}

/// Whether `a` is at least as specific as `b` at every segment and more at one.
fn dominates(a: &RoutePath, b: &RoutePath) -> bool {
    let len = a.segments().count().max(b.segments().count());
    let (ra, rb) = (ranks(a, len), ranks(b, len));
    ra.iter().zip(&rb).all(|(x, y)| x <= y) && ra != rb
}

fn greedy(path: &RoutePath) -> bool {
    matches!(segments(path).last(), Some(Segment::Greedy(_)))
}

/// Whether one route has the more specific path but `ANY`, and the other the named method, on
/// paths both can match (`ANY /a/b` and `GET /a/{x}`): API Gateway documents no order between
/// them (refused). A full path beside a greedy one is fine: every target prefers the full path.
pub fn method_crossed(ma: HttpMethod, a: &RoutePath, mb: HttpMethod, b: &RoutePath) -> bool {
    if ma == mb || greedy(a) != greedy(b) || !overlap(a, b) {
        return false;
    }
    (ma == HttpMethod::Any && dominates(a, b)) || (mb == HttpMethod::Any && dominates(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RoutePath {
        s.parse().unwrap()
    }

    #[test]
    fn overlaps() {
        assert!(overlap(&p("/a/{x}"), &p("/a/b")));
        assert!(overlap(&p("/a/{x+}"), &p("/a/b/c")));
        assert!(overlap(&p("/{x+}"), &p("/a")));
        assert!(!overlap(&p("/a/{x+}"), &p("/a")), "greedy needs a segment");
        assert!(!overlap(&p("/a/{x}"), &p("/a/b/c")));
        assert!(!overlap(&p("/a/b"), &p("/a/c")));
        assert!(overlap(&p("/"), &p("/")));
    }

    #[test]
    fn crossings() {
        assert!(crossed(&p("/a/{x}/c"), &p("/a/b/{y}")));
        assert!(crossed(&p("/{x}/b/c"), &p("/a/{rest+}")));
        assert!(
            !crossed(&p("/a/{x}"), &p("/a/b")),
            "literal beats parameter"
        );
        assert!(!crossed(&p("/a/{x}"), &p("/a/{rest+}")));
        assert!(!crossed(&p("/a/{rest+}"), &p("/{rest+}")));
        assert!(!crossed(&p("/a/{x}/c"), &p("/a/b/d")), "no common path");
        assert!(!crossed(&p("/a/b/{x}"), &p("/a/{rest+}")));
    }

    #[test]
    fn method_crossings() {
        use HttpMethod::{Any, Get};
        assert!(method_crossed(Any, &p("/a/b"), Get, &p("/a/{x}")));
        assert!(method_crossed(Get, &p("/a/{x}"), Any, &p("/a/b")));
        assert!(!method_crossed(Get, &p("/a/b"), Any, &p("/a/{x}")), "agree");
        assert!(
            !method_crossed(Any, &p("/a/{x}"), Get, &p("/a/{x}")),
            "same path"
        );
        assert!(
            !method_crossed(Any, &p("/a/{x}"), Get, &p("/a/{rest+}")),
            "full beats greedy"
        );
        assert!(method_crossed(Any, &p("/a/{rest+}"), Get, &p("/{rest+}")));
    }

    #[test]
    fn order() {
        let mut routes = [
            (HttpMethod::Any, p("/{rest+}")),
            (HttpMethod::Get, p("/a/{x}")),
            (HttpMethod::Any, p("/a/b")),
            (HttpMethod::Get, p("/a/b")),
            (HttpMethod::Get, p("/a/{rest+}")),
        ];
        routes.sort_by_key(|(m, p)| order_key(*m, p));
        let got: Vec<String> = routes.iter().map(|(m, p)| format!("{m} {p}")).collect();
        assert_eq!(
            got,
            [
                "GET /a/b",
                "ANY /a/b",
                "GET /a/{x}",
                "GET /a/{rest+}",
                "ANY /{rest+}"
            ]
        );
    }
}
