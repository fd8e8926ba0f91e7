#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif

/// A value behind a pthread read-write lock: readers run at once, a writer alone. For
/// state that many threads read per request and few write (`ItemStateCache`): a `Mutex`
/// there made the pool's threads queue behind each other's lookups (6% of serve's CPU in
/// the lock's slow path, perf). Writers are preferred, so a steady stream of readers cannot
/// hold a writer off forever.
///
/// `@unchecked Sendable`: `value` is only touched between lock and unlock of `lock`, shared
/// by readers and exclusive for writers.
final class ReadWriteLock<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init(_ value: Value) {
        self.value = value
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        #if canImport(Glibc)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        #endif
        lock.initialize(to: pthread_rwlock_t())
        precondition(pthread_rwlock_init(lock, &attributes) == 0, "pthread_rwlock_init failed")
        pthread_rwlockattr_destroy(&attributes)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<T>(_ body: (borrowing Value) throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(value)
    }

    func write<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value)
    }
}
