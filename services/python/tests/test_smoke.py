from socketclient import result, serving
from streamgate_service import Key, Server


async def test_echo() -> None:
    server = Server(name="t", keys=[Key("k", secret="s", delegate=True)])

    @server.action("ECHO", read=True)
    async def echo(req, ctx):
        return {"id": req.id, "body": req.body}

    async with serving(server, "s") as c:
        st = c.stream()
        r = await st.call_action(1, "ECHO", "7", {"a": 1})
        assert result(r) == {"id": "7", "body": {"a": 1}}
        r = await st.call_action(2, "ECHO", "8", {"a": 1}, raw=False)
        assert result(r) == {"id": "8", "body": {"a": 1}}
        await st.close()
