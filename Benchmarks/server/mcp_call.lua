-- wrk: MCP tools/call echo.echo on one session, a unique JSON-RPC id per request.
-- Env: MCP_SESSION (session id), MCP_AUTH (Authorization header value, optional).
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  thread_id = tid or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["Mcp-Session-Id"] = os.getenv("MCP_SESSION")
  wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
  local auth = os.getenv("MCP_AUTH")
  if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
end
function request()
  counter = counter + 1
  local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo.echo","arguments":{"text":"hi"}}}',
    thread_id * 100000000 + counter)
  return wrk.format(nil, nil, nil, body)
end
local bad = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"isError":false', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local errors = 0
  for _, t in ipairs(threads) do errors = errors + (t:get("bad") or 0) end
  io.write(string.format("BAD_RESPONSES %d\n", errors))
end
