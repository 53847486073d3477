using Ordo.Configuration;
using Ordo.TestServers;

namespace Ordo.Tests.Tools.Mcp;

/// <summary>
/// Against the official reference server <c>@modelcontextprotocol/server-filesystem</c> (npm), run with node over stdio on
/// a temporary directory: a server Ordo did not write.
/// </summary>
public sealed class FilesystemServerTests
{
    [Fact]
    public async Task ReferenceFilesystemServer_ReadsAndListsFiles()
    {
        var script = await McpTestServers.FilesystemServerAsync();
        var root = Path.Combine(Path.GetTempPath(), "ordo-mcp-fs-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path.Combine(root, "sub"));
        await File.WriteAllTextAsync(Path.Combine(root, "notes.txt"), "hello from a file");
        var server = new McpServerDefinition { Name = "fs", Command = ["/usr/bin/node", script, root] };
        await using var p = new McpTestProject(server: server);
        try
        {
            var tools = await p.Pool.ListToolsAsync(p.Project, "fs");
            Assert.Contains(tools, t => t.Name == "read_text_file" || t.Name == "read_file");
            Assert.Contains(tools, t => t.Name == "list_directory");

            var read = await p.CallAsync(McpTestProject.Tool("read_text_file", server: "fs"), new { path = Path.Combine(root, "notes.txt") });
            Assert.Contains("hello from a file", read.GetRawText(), StringComparison.Ordinal);

            var listed = await p.CallAsync(McpTestProject.Tool("list_directory", server: "fs"), new { path = root });
            var text = listed.GetRawText();
            Assert.Contains("notes.txt", text, StringComparison.Ordinal);
            Assert.Contains("sub", text, StringComparison.Ordinal);

            // Outside the allowed directory: the server refuses with an error result.
            var e = await Assert.ThrowsAsync<Ordo.Tools.ToolExecutionException>(async () => await p.CallAsync(McpTestProject.Tool("read_text_file", server: "fs"), new { path = "/etc/hostname" }));
            Assert.Equal("mcp_tool_error", e.Error);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
