import Foundation

/// The operating system's reason for a failed file operation ("Not a directory"). Foundation's
/// errors print as NSError dumps on Linux (`Error Domain=NSCocoaErrorDomain Code=512 "(null)"
/// UserInfo=…`) and their localized descriptions often say only "The operation could not be
/// completed"; the POSIX error underneath says what went wrong.
public func fileSystemReason(_ error: Error) -> String {
    let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? Error
    for candidate in [underlying, error].compactMap({ $0 as NSError? }) where candidate.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(candidate.code)))
    }
    return error.localizedDescription
}
