//! Loading every app's component before start-up, so starting is instantiation only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Supervisor;
use crate::registry::{Component, FileStamp, stamp};

impl Supervisor {
    /// Loads every app's component (each distinct file once, on as many blocking threads
    /// as the machine has cores, the largest files first), so starting is instantiation
    /// only. Apps whose component fails to load are reported in their log and left to
    /// fail when started; the others are unaffected. Returns the failures: (app, why).
    pub async fn preload(&self) -> Vec<(String, String)> {
        let mut by_path: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for (name, e) in self.registry().iter() {
            by_path
                .entry(e.manifest.component.value.clone())
                .or_default()
                .push(name.clone());
        }
        // Stamped before loading: a file replaced while it loads is loaded again at start.
        let files: Vec<(PathBuf, Vec<String>, Option<FileStamp>)> = by_path
            .into_iter()
            .map(|(path, names)| {
                let st = stamp(&path);
                (path, names, st)
            })
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let sizes: Vec<u64> = files.iter().map(|(_, _, st)| st.map_or(0, |s| s.bytes())).collect();
        let mut files: Vec<Option<_>> = files.into_iter().map(Some).collect();
        let mut jobs = Vec::new();
        for share in shares(&sizes, cores) {
            let mine: Vec<_> = share.into_iter().filter_map(|i| files[i].take()).collect();
            let rt = self.inner.runtime.clone();
            jobs.push(self.inner.rt.spawn_blocking(move || {
                mine.into_iter()
                    .map(|(path, names, st)| (rt.load(&path), st, names))
                    .collect::<Vec<_>>()
            }));
        }
        let mut loads = Vec::new();
        for j in jobs {
            match j.await {
                Ok(done) => loads.extend(done),
                // Those apps load again when started, and report the error then.
                Err(e) => tracing::error!(error = %e, "component loader task failed"),
            }
        }
        let mut failures = Vec::new();
        for (result, st, names) in loads {
            let mut apps = self.registry();
            match result {
                Ok(loaded) => {
                    for n in names {
                        if let Some(Err(msg)) = apps.get(&n).map(|e| loaded.fits(&e.manifest)) {
                            if let Some(e) = apps.get(&n) {
                                e.log.note(&msg);
                            }
                            failures.push((n.clone(), msg));
                        }
                        if let (Some(e), Some(st)) = (apps.get_mut(&n), st) {
                            e.component = Some(Component {
                                loaded: loaded.clone(),
                                stamp: st,
                            });
                        }
                    }
                }
                Err(err) => {
                    let msg = err.to_string();
                    for n in names {
                        if let Some(e) = apps.get(&n) {
                            e.log.note(&msg);
                        }
                        failures.push((n, msg.clone()));
                    }
                }
            }
        }
        failures
    }
}

/// Splits files of `sizes` bytes among at most `workers` loaders so that each gets about
/// the same number of bytes to read, hash and map: the largest first, each to the loader
/// with the fewest bytes so far. Returns each loader's file indices, none empty. Thread
/// start-up is dear under emulation, and more loaders than cores only take turns.
fn shares(sizes: &[u64], workers: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut loaders: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); workers.clamp(1, sizes.len().max(1))];
    for i in order {
        let least = loaders
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one loader");
        least.0 += sizes[i];
        least.1.push(i);
    }
    loaders
        .into_iter()
        .map(|(_, files)| files)
        .filter(|f| !f.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn loaders_get_about_the_same_bytes_largest_first() {
        // The two large files go to different loaders, the small ones fill the gaps.
        let sizes = [250, 1200, 260, 1230, 900, 400];
        let s = shares(&sizes, 2);
        assert_eq!(s, vec![vec![3, 5, 2, 0], vec![1, 4]]);
        let bytes: Vec<u64> = s.iter().map(|f| f.iter().map(|&i| sizes[i]).sum()).collect();
        assert_eq!(bytes, vec![2140, 2100]);
        // Every file exactly once.
        let mut all: Vec<usize> = s.concat();
        all.sort_unstable();
        assert_eq!(all, (0..sizes.len()).collect::<Vec<_>>());
    }

    #[test]
    fn never_more_loaders_than_files_or_than_asked() {
        assert_eq!(shares(&[10], 8), vec![vec![0]]);
        assert_eq!(shares(&[1, 2, 3], 1), vec![vec![2, 1, 0]]);
        assert!(shares(&[], 4).is_empty());
        assert_eq!(shares(&[5, 5], 0), vec![vec![0, 1]]);
    }
}
