-- miltertest script: one outbound De-Mail through demail-milter, checked with an independent
-- milter client (OpenDKIM's miltertest). Run: miltertest -s outbound.lua -D port=N (or socket=...)
-- Debian's miltertest exits 1 without a word on a Lua error, so every failure prints first.

local function fail(msg)
  print("outbound.lua: FAIL: " .. msg)
  error(msg)
end

local function ok(what, err)
  if err ~= nil then fail(what .. ": " .. tostring(err)) end
end

local function reply_name(r)
  if r == nil then return "nil" end
  if type(r) == "number" then return string.char(r) end
  return tostring(r)
end

local function expect(conn, what, want)
  local got = mt.getreply(conn)
  if got ~= want then
    fail(what .. ": reply " .. reply_name(got) .. ", expected " .. reply_name(want))
  end
end

local function check(cond, what)
  if not cond then fail(what) end
end

-- -D socket=unix:/PATH (the packaged milter, dev/test-package) or -D port=N (on 127.0.0.1).
if socket == nil then
  if port == nil then fail("pass the milter's -D socket=unix:/PATH or -D port=N") end
  socket = "inet:" .. port .. "@127.0.0.1"
end

local conn = mt.connect(socket, 10, 0.2)
if conn == nil then fail("cannot connect to " .. socket) end
mt.set_timeout(20)

-- The milter asks for exactly what it uses.
check(mt.test_action(conn, SMFIF_ADDHDRS), "ADD_HEADER not requested")
check(mt.test_action(conn, SMFIF_CHGHDRS), "CHANGE_HEADER not requested")
check(mt.test_action(conn, SMFIF_CHGFROM), "CHANGE_SENDER not requested")
check(not mt.test_action(conn, SMFIF_CHGBODY), "body replacement requested")
check(mt.test_option(conn, SMFIP_HDR_LEADSPC), "LEADING_SPACE not requested")

mt.macro(conn, SMFIC_CONNECT, "{daemon_name}", "submission", "{client_addr}", "192.0.2.10",
         "j", "mx.magdeburg.example")
ok("conninfo", mt.conninfo(conn, "client.magdeburg.example", "192.0.2.10"))
expect(conn, "conninfo", SMFIR_CONTINUE)
ok("helo", mt.helo(conn, "client.magdeburg.example"))
expect(conn, "helo", SMFIR_CONTINUE)

mt.macro(conn, SMFIC_MAIL, "i", "MT1234567", "{mail_addr}", "erika.muster@magdeburg.example")
ok("mailfrom", mt.mailfrom(conn, "<erika.muster@magdeburg.example>"))
expect(conn, "mailfrom", SMFIR_CONTINUE)
ok("rcptto", mt.rcptto(conn, "<buerger@example.de-mail.de>"))
expect(conn, "rcptto De-Mail", SMFIR_CONTINUE)
-- An ordinary recipient would mix the message: refused with the policy's text.
ok("rcptto", mt.rcptto(conn, "<nachbar@example.org>"))
expect(conn, "rcptto ordinary", SMFIR_REPLYCODE)
ok("data", mt.data(conn))
expect(conn, "data", SMFIR_CONTINUE)

-- With LEADING_SPACE negotiated, miltertest itself puts one space before each value (as
-- Postfix does for "Name: value"), so the values here are written without it.
local headers = {
  {"From", "Erika Muster <erika.muster@magdeburg.example>"},
  {"To", "<buerger@example.de-mail.de>"},
  {"Subject", "[Versandbestaetigung] [persoenlich] Ihr Antrag"},
  {"Message-ID", "<mt-1@client.magdeburg.example>"},
  {"Date", "Mon, 24 Nov 2025 10:00:00 +0100"},
  {"Reply-To", "elsewhere@example.org"},
  {"X-de-mail-sender", "forged@example.de-mail.de"},
}
for _, h in ipairs(headers) do
  ok("header " .. h[1], mt.header(conn, h[1], h[2]))
  expect(conn, "header " .. h[1], SMFIR_CONTINUE)
end
ok("eoh", mt.eoh(conn))
expect(conn, "eoh", SMFIR_CONTINUE)
ok("body", mt.bodystring(conn, "Sehr geehrte Damen und Herren,\r\n\r\nanbei.\r\n"))
expect(conn, "body", SMFIR_CONTINUE)
ok("eom", mt.eom(conn))
expect(conn, "eom", SMFIR_ACCEPT)

check(mt.eom_check(conn, MT_HDRCHANGE, "From",
        " \"Landeshauptstadt Magdeburg\" <info@magdeburg.de-mail.de>"),
      "From not changed to the account")
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", " Ihr Antrag"), "Subject tags not removed")
check(mt.eom_check(conn, MT_HDRDELETE, "Reply-To"), "stray Reply-To not deleted")
check(mt.eom_check(conn, MT_HDRDELETE, "X-de-mail-sender"), "forged X-de-mail-sender kept")
check(mt.eom_check(conn, MT_HDRADD, "X-de-mail-confirmation-of-dispatch", " yes"), "dispatch")
check(mt.eom_check(conn, MT_HDRADD, "X-de-mail-confirmation-of-receipt", " yes"), "receipt")
check(mt.eom_check(conn, MT_HDRADD, "X-de-mail-confirmation-of-retrieve", " no"), "retrieve")
check(mt.eom_check(conn, MT_HDRADD, "X-de-mail-authoritative", " no"), "authoritative")
check(mt.eom_check(conn, MT_HDRADD, "X-de-mail-private", " yes"), "private")
check(not mt.eom_check(conn, MT_HDRADD, "Message-ID"), "Message-ID added though present")
check(not mt.eom_check(conn, MT_HDRINSERT), "a header was inserted (we only change and append)")
check(not mt.eom_check(conn, MT_BODYCHANGE), "body changed")

local private_id = mt.getheader(conn, "X-de-mail-private-id", 0)
if private_id == nil then fail("X-de-mail-private-id not added") end
if not string.match(private_id, "^ %w+%.landeshauptstadt%-magdeburg$") then
  fail("unexpected X-de-mail-private-id: " .. private_id)
end

mt.disconnect(conn)
print("outbound.lua: all checks passed; private id" .. private_id)
