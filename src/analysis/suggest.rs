//! Did-you-mean: the known name closest to a misspelt one, by edit distance.

/// The number of single-character insertions, deletions, substitutions and swaps of two
/// neighbours that turn `a` into `b` (optimal string alignment distance), counted in
/// characters; case counts.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one before the previous is needed for swaps.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Names longer than this are not compared (no identifier a person types is this long;
/// it keeps the work per name bounded).
const LONGEST: usize = 64;

/// The candidate closest to `name`, when it is close enough to be what was meant: at most
/// one edit for names up to 4 characters, two up to 8, three beyond; a candidate that
/// differs only in case always counts. Ties go to the first candidate.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if name.chars().count() > LONGEST {
        return None;
    }
    let allowed = match name.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name || candidate.chars().count() > LONGEST {
            continue;
        }
        let d = if candidate.to_lowercase() == lower {
            0
        } else {
            distance(name, candidate)
        };
        if d <= allowed && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("qurey", "query"), 1);
        assert_eq!(distance("boby", "body"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("é", "e"), 1);
    }

    #[test]
    fn suggestions_are_close_or_none() {
        let known = ["query", "query_one", "exec", "transaction"];
        assert_eq!(did_you_mean("qurey", known), Some("query"));
        assert_eq!(did_you_mean("Query", known), Some("query"));
        assert_eq!(did_you_mean("exce", known), Some("exec"));
        assert_eq!(did_you_mean("select", known), None);
        assert_eq!(did_you_mean(&"x".repeat(1000), known), None);
    }
}
