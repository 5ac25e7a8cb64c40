//! The locks and atomics of the IOVA allocator: `spin` and `core` normally,
//! loom's models under `--cfg loom` so its tests explore every interleaving of
//! the real code.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use spin::mutex::{SpinMutex as Lock, SpinMutexGuard as LockGuard};

#[cfg(loom)]
pub(crate) use self::loom_lock::{Lock, LockGuard};

#[cfg(loom)]
mod loom_lock {
    use core::ops::{Deref, DerefMut};
    use loom::sync::atomic::{AtomicUsize, Ordering};

    /// `loom::sync::Mutex` behind the `spin` API.
    ///
    /// Loom switches threads only at synchronization operations, and
    /// releasing a mutex is not one: a critical section would look
    /// instantaneous and a `try_lock` could never find the lock taken. So
    /// the holder marks the lock held and free in an atomic, which
    /// `try_lock` reads first: loom then explores a `try_lock` in the middle
    /// of a critical section.
    #[derive(Debug)]
    pub(crate) struct Lock<T> {
        mutex: loom::sync::Mutex<T>,
        held: AtomicUsize,
    }

    /// The guard: clears the mark before it unlocks.
    pub(crate) struct LockGuard<'a, T> {
        guard: Option<loom::sync::MutexGuard<'a, T>>,
        held: &'a AtomicUsize,
    }

    impl<T> Lock<T> {
        pub(crate) fn new(v: T) -> Self {
            Self { mutex: loom::sync::Mutex::new(v), held: AtomicUsize::new(0) }
        }

        pub(crate) fn lock(&self) -> LockGuard<'_, T> {
            let guard = self.mutex.lock().unwrap();
            self.held.store(1, Ordering::Relaxed);
            LockGuard { guard: Some(guard), held: &self.held }
        }

        pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, T>> {
            self.held.load(Ordering::Relaxed);
            let guard = self.mutex.try_lock().ok()?;
            self.held.store(1, Ordering::Relaxed);
            Some(LockGuard { guard: Some(guard), held: &self.held })
        }
    }

    impl<T> Deref for LockGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.guard.as_ref().unwrap()
        }
    }

    impl<T> DerefMut for LockGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.guard.as_mut().unwrap()
        }
    }

    impl<T> Drop for LockGuard<'_, T> {
        fn drop(&mut self) {
            self.held.store(0, Ordering::Relaxed);
            self.guard = None;
        }
    }
}
