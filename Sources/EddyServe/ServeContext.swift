import Hummingbird
import NIOCore

/// The request context of `eddy serve`: Hummingbird's basics plus the client's address,
/// which the rate limit keys clients without an API key by.
public struct ServeContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
