import ArgumentParser

/// A server (`serve`, `dashboard`, `train --dashboard-port`) that could not start listening,
/// said in one line instead of the network library's error text
/// (`bind(descriptor:ptr:bytes:): Address already in use) (errno: 98)`).
enum ListenError {
    /// `error`, thrown by a server on `host:port` (`flag` sets the port), as the user's error
    /// when it is a failure to listen; any other error is returned as it is.
    static func describe(_ error: any Error, host: String, port: Int, flag: String = "--port") -> any Error {
        let text = "\(error)"
        if text.contains("Address already in use") {
            return ValidationError("cannot listen on \(host):\(port): the port is in use (choose another \(flag), or 0 for any free one)")
        }
        if text.contains("Cannot assign requested address") {
            return ValidationError("cannot listen on \(host): it is not an address of this machine")
        }
        if text.contains("UnknownHost") || text.contains("unknown host") {
            return ValidationError("cannot listen on \(host): not a host name or IP address this machine knows")
        }
        if text.contains("Permission denied") {
            return ValidationError("cannot listen on \(host):\(port): permission denied (ports below 1024 need root)")
        }
        return error
    }
}
