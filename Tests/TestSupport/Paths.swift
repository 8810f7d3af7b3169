/// The repository's root, for a test file at `Tests/<Suite>/<File>.swift` (pass nothing: the
/// caller's file).
public func repositoryRoot(_ filePath: String = #filePath) -> String {
    var path = filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}

/// The `Fixtures` folder beside the calling test file.
public func fixturesDirectory(_ filePath: String = #filePath) -> String {
    String(filePath[..<filePath.lastIndex(of: "/")!]) + "/Fixtures"
}
