import Hummingbird

/// JSON answers in the shapes every Eddy endpoint uses: results as objects, errors as
/// `{"error":{"message":"…"}}` (with more members beside `error` where they help).
enum Responses {
    static func json(_ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: value.bytes)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:], extra: [(String, JSONValue)] = []) -> Response {
        json(status, .object(extra + [("error", .object([("message", .string(message))]))]), headers: headers)
    }
}
