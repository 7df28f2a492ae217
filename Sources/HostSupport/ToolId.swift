/// A tool's id, `driver.tool`: the driver's name, a dot, the tool's name within the driver.
/// Plans, policy and the registry all split ids the same way.
public enum ToolId {
    /// Splits `driver.tool` into its parts (at the first dot); nil when either part is empty.
    public static func split(_ toolId: String) -> (driver: String, tool: String)? {
        guard let dot = toolId.firstIndex(of: "."), dot != toolId.startIndex else { return nil }
        let tool = toolId[toolId.index(after: dot)...]
        guard !tool.isEmpty else { return nil }
        return (String(toolId[..<dot]), String(tool))
    }
}
