-- Neovim as an rhapi lsp client, headless (tests/lsp.rs runs it; by hand:
--   RHAPI_BIN=target/debug/rhapi nvim --headless -u NONE -c "luafile tests/editors/neovim.lua"
-- ). It writes a small app to a temporary folder, opens a route with the built-in LSP client,
-- types a mistake into the buffer (unsaved), and checks what an editor user would see: an
-- error on that line, then completion after `db::` and hover on `db::query`. It prints
-- "nvim: ok" and exits 0, or prints what failed and exits 1.
--
-- Neovim 0.7 (Debian's) has vim.lsp.start_client; 0.8 and later also have vim.lsp.start,
-- which docs/editor.md shows.

local function fail(message)
  io.stdout:write("nvim: FAILED: " .. message .. "\n")
  vim.cmd("cquit 1")
end

local bin = os.getenv("RHAPI_BIN") or "rhapi"
local app = vim.fn.tempname()
vim.fn.mkdir(app .. "/pages/api", "p")
vim.fn.mkdir(app .. "/pages/lib", "p")
vim.fn.writefile({ "/// Checks a token.", "fn verify(token) { token }" }, app .. "/pages/lib/auth.rhai")
local route = app .. "/pages/api/users.rhai"
vim.fn.writefile({
  'import "../lib/auth" as auth;',
  "fn GET(req) {",
  "    let rows = db::query(\"SELECT 1\", []);",
  "    rows",
  "}",
}, route)

vim.cmd("edit " .. route)
local buf = vim.api.nvim_get_current_buf()
local client = vim.lsp.start_client({ name = "rhapi", cmd = { bin, "lsp" }, root_dir = app })
if not client then
  fail("could not start " .. bin .. " lsp")
end
vim.lsp.buf_attach_client(buf, client)

-- A mistake typed on line 3, not saved.
vim.api.nvim_buf_set_lines(buf, 2, 2, false, { "    let x = ;" })
local arrived = vim.wait(10000, function()
  return #vim.diagnostic.get(buf) > 0
end, 50)
if not arrived then
  fail("no diagnostic within 10 s")
end
local d = vim.diagnostic.get(buf)[1]
if d.lnum ~= 2 or d.severity ~= vim.diagnostic.severity.ERROR then
  fail("diagnostic at line " .. d.lnum .. ", severity " .. d.severity .. ": " .. d.message)
end
io.stdout:write("nvim: diagnostic at line " .. (d.lnum + 1) .. ": " .. d.message .. "\n")

local function request(method, line, character)
  local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = line, character = character } }
  local answers = vim.lsp.buf_request_sync(buf, method, params, 5000) or {}
  for _, answer in pairs(answers) do
    if answer.result then
      return answer.result
    end
  end
  fail(method .. ": no answer")
end

-- Line 4 is now `    let rows = db::query(...)`: just after `db::` is character 19.
local labels = {}
for _, item in ipairs(request("textDocument/completion", 3, 19)) do
  labels[item.label] = true
end
if not labels["query"] then
  fail("no `query` in the completion after db::")
end
local hover = request("textDocument/hover", 3, 21)
if not (hover.contents and hover.contents.value and hover.contents.value:find("row maps")) then
  fail("hover on db::query: " .. vim.inspect(hover))
end
io.stdout:write("nvim: completion after db:: and hover on db::query\n")
io.stdout:write("nvim: ok\n")
vim.lsp.stop_client(client)
vim.cmd("qall!")
