//! Counted work, so that tests can assert how a cost grows as a ratio of
//! steps rather than of time. The scans, hash operations and graph walks
//! whose growth matters call [`work`]; it counts in the crate's unit tests
//! and compiles to nothing in every other build.

#[cfg(test)]
thread_local! {
    static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts `steps` steps of work (only in unit tests).
#[inline(always)]
pub(crate) fn work(steps: usize) {
    #[cfg(test)]
    WORK.with(|work| work.set(work.get().saturating_add(steps)));
    #[cfg(not(test))]
    let _ = steps;
}

/// What `f` returns, and the steps of work it counted on this thread.
#[cfg(test)]
pub(crate) fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    WORK.with(|work| work.set(0));
    let result = f();
    (result, WORK.with(std::cell::Cell::get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_steps_of_what_it_runs_and_only_those() {
        work(5);
        let ((), steps) = counted(|| (0..7).for_each(|_| work(2)));
        assert_eq!(steps, 14);
        let ((), none) = counted(|| ());
        assert_eq!(none, 0);
    }
}
