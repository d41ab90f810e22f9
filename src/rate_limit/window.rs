//! The sliding window of one counter: two fixed buckets (this window's count and the last
//! one's), the last weighted by how much of it still lies inside the sliding window. This
//! is the estimate Cloudflare and nginx-style limiters use: exact when requests are spread
//! evenly, never more than one window's worth off, and two integers per key.

/// One counter's state: the fixed window it last counted in and the two buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Start of the fixed window `cur` counts in, in ms since the epoch (a multiple of `per`).
    pub start: i64,
    /// Requests counted in the fixed window before `start`.
    pub prev: u64,
    /// Requests counted since `start`.
    pub cur: u64,
}

/// A limit: `limit` requests per `per_ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    pub limit: u64,
    pub per_ms: i64,
}

/// What a counter said to one request, and what its headers show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    /// Requests still allowed now (after this one, when it was allowed).
    pub remaining: u64,
    /// Seconds until the window moves on (refused: until a request is allowed again).
    pub reset: u64,
    /// The window, in whole seconds (at least 1).
    pub window: u64,
}

impl Window {
    /// The window as it stands at `now`: moved on to the fixed window holding `now`.
    pub fn at(self, now: i64, per: i64) -> Window {
        let start = now - now.rem_euclid(per);
        if start == self.start {
            return self;
        }
        Window {
            start,
            prev: if start - self.start == per {
                self.cur
            } else {
                0
            },
            cur: 0,
        }
    }

    /// The estimate of requests in the sliding window ending at `now`, times `per` (so it
    /// stays an integer): `prev` weighted by the part of its window still inside, plus `cur`.
    fn weighted(&self, now: i64, per: i64) -> u128 {
        let inside = (per - (now - self.start)).clamp(0, per) as u128;
        self.prev as u128 * inside + self.cur as u128 * per as u128
    }

    /// Counts one request at `now` if `limit` allows it (a refused one is not counted).
    /// `self` must already be [`Window::at`] `now`.
    pub fn take(&mut self, now: i64, limit: Limit) -> Decision {
        let per = limit.per_ms;
        let cap = limit.limit as u128 * per as u128;
        let allowed = self.weighted(now, per) + per as u128 <= cap;
        if allowed {
            self.cur += 1;
        }
        let after = self.weighted(now, per);
        let remaining = (cap.saturating_sub(after) / per as u128) as u64;
        let reset_ms = if allowed {
            self.start + per - now
        } else {
            self.wait(now, limit)
        };
        Decision {
            allowed,
            limit: limit.limit,
            remaining: if allowed { remaining } else { 0 },
            reset: ceil_seconds(reset_ms),
            window: ceil_seconds(per),
        }
    }

    /// Undoes a [`Window::take`] that was allowed at `now` (another limit refused the same
    /// request, and refused requests do not count).
    pub fn give_back(&mut self, now: i64, per: i64) {
        if now - now.rem_euclid(per) == self.start {
            self.cur = self.cur.saturating_sub(1);
        }
    }

    /// Milliseconds from `now` until one more request would be allowed.
    fn wait(&self, now: i64, limit: Limit) -> i64 {
        let per = limit.per_ms as i128;
        let (prev, cur, n) = (self.prev as i128, self.cur as i128, limit.limit as i128);
        let into = (now - self.start) as i128;
        let wait = if cur >= n {
            // Only the next window can allow it, once enough of this one has slid out:
            // cur * (per - t) + per <= n * per.
            let t = ceil_div(per * (cur - n + 1), cur);
            per - into + t
        } else {
            // prev * (per - t) <= (n - cur - 1) * per; prev > 0, or it would be allowed.
            let t = per - (n - cur - 1) * per / prev.max(1);
            (t - into).max(1)
        };
        wait.clamp(1, i64::MAX as i128) as i64
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// Milliseconds as whole seconds, rounded up, at least 1.
pub fn ceil_seconds(ms: i64) -> u64 {
    (ms.max(1) as u64).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Limit = Limit {
        limit: 10,
        per_ms: 60_000,
    };

    fn take(w: &mut Window, now: i64, limit: Limit) -> Decision {
        *w = w.at(now, limit.per_ms);
        w.take(now, limit)
    }

    #[test]
    fn ten_a_minute_then_refused_and_refusals_do_not_count() {
        let mut w = Window::default();
        let start = 600_000;
        for i in 0..10 {
            let d = take(&mut w, start + 18_000, MINUTE);
            assert!(d.allowed, "{i}");
            assert_eq!(d.remaining, 9 - i);
            assert_eq!((d.reset, d.window), (42, 60));
        }
        for _ in 0..5 {
            // The next window starts in 42 s, and a tenth of it must slide by too.
            let d = take(&mut w, start + 18_000, MINUTE);
            assert_eq!((d.allowed, d.remaining, d.reset), (false, 0, 48));
        }
        assert_eq!(w.cur, 10);
        // 42 s later a new window starts with the 10 weighted fully: one slot frees after
        // a tenth of it (6 s).
        let d = take(&mut w, start + 60_000, MINUTE);
        assert_eq!((d.allowed, d.reset), (false, 6));
        let d = take(&mut w, start + 66_000, MINUTE);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        // Two windows on, everything has slid out.
        let d = take(&mut w, start + 180_000, MINUTE);
        assert_eq!((d.allowed, d.remaining), (true, 9));
    }

    #[test]
    fn the_previous_window_slides_out_in_proportion() {
        let mut w = Window {
            start: 0,
            prev: 0,
            cur: 10,
        };
        // Half-way into the next window: 5 of the 10 still count.
        let d = take(&mut w, 90_000, MINUTE);
        assert_eq!((d.allowed, d.remaining), (true, 4));
        for _ in 0..4 {
            assert!(take(&mut w, 90_000, MINUTE).allowed);
        }
        let d = take(&mut w, 90_000, MINUTE);
        assert!(!d.allowed);
        // 10 * (60 - t) / 60 + 5 <= 9  ->  t >= 36 s, 6 s from now.
        assert_eq!(d.reset, 6);
        assert!(take(&mut w, 96_000, MINUTE).allowed);
    }

    #[test]
    fn give_back_undoes_a_count() {
        let mut w = Window::default();
        take(&mut w, 5, MINUTE);
        w.give_back(5, 60_000);
        assert_eq!(w.cur, 0);
        w.give_back(5, 60_000);
        assert_eq!(w.cur, 0, "never below zero");
    }

    #[test]
    fn sub_second_windows_show_one_second() {
        let limit = Limit {
            limit: 1,
            per_ms: 500,
        };
        let mut w = Window::default();
        assert!(take(&mut w, 100, limit).allowed);
        let d = take(&mut w, 100, limit);
        assert_eq!((d.allowed, d.reset, d.window), (false, 1, 1));
    }
}
