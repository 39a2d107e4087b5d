"""A debugging aid for the client tests: a TCP relay that prints the PostgreSQL protocol messages
passing through it, one line each (`CONN> TYPE text` from the client, `CONN< TYPE text` from the
server; DataRow contents are left out). Put it between a driver and the proxy to see the message
sequence a driver sends, e.g. asyncpg's Parse/Describe/Flush before Bind/Execute/Sync:

  python3 tests/clients/wire_log_relay.py LISTEN_PORT PROXY_PORT     # then point the driver at LISTEN_PORT

Only for plain-text connections (the relay answers nothing itself: an SSLRequest is passed on and
the server's refusal logged).
"""
import asyncio
import struct
import sys

SSL_REQUEST = 80877103
SHOWN = b"QPBCDESTNZ"  # message types whose text is worth printing


async def pump(reader, writer, tag, conn):
    buf = b""
    startup = tag == ">"  # the client's first messages have no type byte
    first_reply = tag == "<"
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            buf += data
            while True:
                if startup:
                    if len(buf) < 8 or len(buf) < struct.unpack("!I", buf[:4])[0]:
                        break
                    length, code = struct.unpack("!II", buf[:8])
                    buf = buf[length:]
                    print(f"{conn}{tag} startup {'SSLRequest' if code == SSL_REQUEST else code}", flush=True)
                    startup = code == SSL_REQUEST
                    continue
                if first_reply and buf[:1] == b"N":  # the server refuses SSL with one byte
                    buf = buf[1:]
                    first_reply = False
                    print(f"{conn}{tag} SSL refused", flush=True)
                    continue
                first_reply = False
                if len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
                    break
                kind, length = buf[:1], struct.unpack("!I", buf[1:5])[0]
                body, buf = buf[5:1 + length], buf[1 + length:]
                text = ""
                if kind in SHOWN and not (kind == b"D" and tag == "<"):
                    text = body[:200].replace(b"\0", b"|").decode("latin1")
                print(f"{conn}{tag} {kind.decode('latin1')} {text}", flush=True)
    except (ConnectionError, OSError) as e:
        print(f"{conn}{tag} {e}", flush=True)
    finally:
        writer.close()


async def main(listen_port, target_port):
    count = 0

    async def handle(client_reader, client_writer):
        nonlocal count
        count += 1
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(client_reader, server_writer, ">", count),
                             pump(server_reader, client_writer, "<", count))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: wire_log_relay.py LISTEN_PORT TARGET_PORT")
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
