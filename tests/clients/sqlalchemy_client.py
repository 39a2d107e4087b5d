"""SQLAlchemy ORM (Debian's python3-sqlalchemy on psycopg2), unmodified, against one target (run
by tests/clients/sqlalchemy_test.sh; see driver_harness.py for the targets and KNOWN_FAILURES).

Usage: /usr/bin/python3 sqlalchemy_client.py TARGET HOST PORT USER PASSWORD DATABASE S0_PORT S1_PORT

Every unit of work is keyed to one tenant (the way a sharded application uses the ORM); the
tenant-less statements are the schema's create_all and aggregate reads.
"""
import decimal
import random
import sys
import time

import psycopg2
import sqlalchemy
from sqlalchemy import (Column, ForeignKeyConstraint, BigInteger, Integer, Numeric, Text, create_engine, func,
                        select, text)
from sqlalchemy.orm import Session, declarative_base, relationship, selectinload

from driver_harness import Harness

# Scenario -> the proxy bug it hits ("TARGET:scenario" for one target only). Each entry must
# fail where listed; one that passes is reported, so fixed bugs get their entry removed.
KNOWN_FAILURES = {}  # (the proxy-2shard target runs cross_shard_transactions: 2pc)

TARGET, HOST, PORT, USER, PASSWORD, DATABASE = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:7]
SHARD_PORTS = (int(sys.argv[7]), int(sys.argv[8]))
SEED = random.randrange(1 << 30)
rng = random.Random(SEED)
print(f"# SQLAlchemy {sqlalchemy.__version__}, target {TARGET} on port {PORT}, seed {SEED}")
h = Harness(TARGET, KNOWN_FAILURES)
D = decimal.Decimal

URL = f"postgresql+psycopg2://{USER}:{PASSWORD}@{HOST}:{PORT}/{DATABASE}"
engine = create_engine(URL, pool_size=5, max_overflow=0, future=True,
                       connect_args={"connect_timeout": 10, "application_name": "sqlalchemy-test"})
autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

Base = declarative_base()


class Account(Base):
    __tablename__ = "sa_accounts"
    tenant_id = Column(BigInteger, primary_key=True)
    id = Column(Integer, primary_key=True)
    name = Column(Text, nullable=False)
    balance = Column(Numeric(12, 2), nullable=False, default=0)
    notes = relationship("Note", back_populates="account", cascade="all, delete-orphan",
                         order_by="Note.id")


class Note(Base):
    __tablename__ = "sa_notes"
    tenant_id = Column(BigInteger, primary_key=True)
    id = Column(Integer, primary_key=True)
    account_id = Column(Integer, nullable=False)
    body = Column(Text)
    account = relationship("Account", back_populates="notes")
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "account_id"],
                                           ["sa_accounts.tenant_id", "sa_accounts.id"], ondelete="CASCADE"),)


def shard_of(tenants):
    """tenant -> index of the shard that must hold it, computed by PostgreSQL itself (SPEC 4)."""
    d = psycopg2.connect(host=HOST, port=SHARD_PORTS[0], user=USER, password=PASSWORD, dbname="app",
                         connect_timeout=10)
    try:
        cur = d.cursor()
        cur.execute("CREATE TEMP TABLE placement_oracle (k bigint) PARTITION BY HASH (k)")
        cur.execute("SELECT k, r FROM unnest(%s::bigint[]) k, generate_series(0, 1023) r "
                    "WHERE satisfies_hash_partition('placement_oracle'::regclass, 1024, r, k)", (list(tenants),))
        return {k: (0 if r <= 511 else 1) for k, r in cur.fetchall()}
    finally:
        d.close()


TENANTS = list(dict.fromkeys([rng.randrange(1, 10_000) for _ in range(10)] +
                             [rng.randrange(1 << 33, 1 << 40) for _ in range(10)]))
HOME = shard_of(TENANTS)
TENANTS.sort(key=lambda t: HOME[t] == 0)  # tenants off the home shard first


def setup():
    with autocommit_engine.connect() as c:
        Base.metadata.drop_all(c)
        Base.metadata.create_all(c)
        h.check("create_all made both tables", 2, c.execute(text(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('sa_accounts', 'sa_notes')")).scalar())
        if h.sharded:
            # The proxy learns a new table's key type after its CREATE; wait for it here (the
            # asyncpg test checks what happens before).
            for table in ("sa_accounts", "sa_notes"):
                port = None
                for _ in range(100):
                    port = c.execute(text(f"SELECT inet_server_port(), count(*) FROM {table} WHERE tenant_id = :t"),
                                     {"t": TENANTS[0]}).scalar()
                    if port == SHARD_PORTS[1]:
                        break
                    time.sleep(0.1)
                h.check(f"the proxy routes {table} by tenant_id within 10 s of its CREATE", SHARD_PORTS[1], port)


def create_all_in_transaction():
    """create_all the usual way: in one transaction (DDL is transactional in PostgreSQL)."""
    with engine.begin() as c:
        Base.metadata.drop_all(c)
        Base.metadata.create_all(c)
    with engine.connect() as c:
        h.check("create_all in a transaction made both tables", 2, c.execute(text(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('sa_accounts', 'sa_notes')")).scalar())


def orm_crud():
    for t in TENANTS:  # one unit of work per tenant
        with Session(engine) as s, s.begin():
            for i in range(1, 6):
                s.add(Account(tenant_id=t, id=i, name=f"acct-{t}-{i}", balance=D(i),
                              notes=[Note(tenant_id=t, id=10 * i + k, body=f"note {k}") for k in range(3)]))
    got = {}
    for t in TENANTS:
        with Session(engine) as s:
            got[t] = s.execute(select(func.count()).select_from(Account).where(Account.tenant_id == t)).scalar()
    h.check("each tenant has its 5 accounts", {t: 5 for t in TENANTS}, got)
    with Session(engine) as s:
        t = TENANTS[0]
        a = s.get(Account, (t, 2))
        a.balance += D("10.50")
        a.notes[0].body = "edited"
        s.commit()
    with Session(engine) as s:
        a = s.get(Account, (t, 2))
        h.check("the update is committed", (D("12.50"), "edited"), (a.balance, a.notes[0].body))
        s.delete(a)
        s.commit()
    with Session(engine) as s:
        h.check("the deleted account and its notes are gone", (0, 0), (
            s.execute(select(func.count()).select_from(Account).where(Account.tenant_id == t, Account.id == 2)).scalar(),
            s.execute(select(func.count()).select_from(Note).where(Note.tenant_id == t, Note.account_id == 2)).scalar()))


def selectinload_composite_key():
    """selectinload of a relationship on (tenant_id, account_id): WHERE (tenant_id, account_id) IN
    ((t, 1), (t, 2), ...) ORDER BY id, all of one tenant."""
    t = TENANTS[4]
    with Session(engine) as s:
        accounts = s.execute(select(Account).where(Account.tenant_id == t).options(selectinload(Account.notes))
                             .order_by(Account.id)).scalars().all()
        h.check("selectinload returns each account's 3 notes",
                [(i, [10 * i + k for k in range(3)]) for i in range(1, 6)],
                [(a.id, [n.id for n in a.notes]) for a in accounts])


def several_tenants_in_one_session():
    """One session (one transaction) reading every tenant, as a non-sharded application would."""
    with Session(engine) as s:
        got = {t: s.execute(select(func.count()).select_from(Account).where(Account.tenant_id == t)).scalar()
               for t in TENANTS}
        h.check("one transaction reads every tenant's accounts",
                {t: 4 if t == TENANTS[0] else 5 for t in TENANTS}, got)


def rollback():
    t = TENANTS[1]
    with Session(engine) as s:
        s.add(Account(tenant_id=t, id=100, name="rolled back"))
        s.flush()
        h.check("the flushed row is visible in its session", 1, s.execute(
            select(func.count()).select_from(Account).where(Account.tenant_id == t, Account.id == 100)).scalar())
        with Session(engine) as other:
            h.check("another session does not see it", 0, other.execute(
                select(func.count()).select_from(Account).where(Account.tenant_id == t, Account.id == 100)).scalar())
        s.rollback()
    with Session(engine) as s:
        h.check("after the rollback nobody sees it", 0, s.execute(
            select(func.count()).select_from(Account).where(Account.tenant_id == t, Account.id == 100)).scalar())
    try:
        with Session(engine) as s, s.begin():
            s.get(Account, (t, 1)).balance = D(999)
            s.flush()
            s.add(Account(tenant_id=t, id=1, name="duplicate"))
            s.flush()
    except sqlalchemy.exc.IntegrityError:
        pass
    with Session(engine) as s:
        h.check("a failed unit of work left the balance untouched", D(1), s.get(Account, (t, 1)).balance)


def savepoints():
    t = TENANTS[2]
    with Session(engine) as s, s.begin():
        s.add(Account(tenant_id=t, id=200, name="outer"))
        s.flush()
        try:
            with s.begin_nested():
                s.add(Account(tenant_id=t, id=201, name="inner"))
                s.flush()
                s.add(Account(tenant_id=t, id=200, name="duplicate"))
                s.flush()
        except sqlalchemy.exc.IntegrityError:
            pass
        with s.begin_nested():
            s.add(Account(tenant_id=t, id=202, name="inner kept"))
    with Session(engine) as s:
        h.check("the rolled-back savepoint's row is gone, the others committed", [200, 202],
                s.execute(select(Account.id).where(Account.tenant_id == t, Account.id >= 200)
                          .order_by(Account.id)).scalars().all())


def isolation_level():
    t = TENANTS[3]
    rr = engine.execution_options(isolation_level="REPEATABLE READ")
    with Session(rr) as s:
        before = s.execute(select(func.count()).select_from(Account).where(Account.tenant_id == t)).scalar()
        h.check("the server reports repeatable read", "repeatable read",
                s.execute(text("SELECT current_setting('transaction_isolation')")).scalar())
        with Session(engine) as other, other.begin():
            other.add(Account(tenant_id=t, id=300, name="concurrent"))
        h.check("a concurrent commit stays invisible in the repeatable-read transaction", before, s.execute(
            select(func.count()).select_from(Account).where(Account.tenant_id == t)).scalar())
        s.commit()
        h.check("the next transaction sees it", before + 1, s.execute(
            select(func.count()).select_from(Account).where(Account.tenant_id == t)).scalar())


def tenant_less_aggregates():
    """Tenant-less aggregates, outside a transaction (autocommit)."""
    with autocommit_engine.connect() as c:
        h.check("a tenant-less count sees every account", 5 * len(TENANTS) - 1 + 3,
                c.execute(select(func.count()).select_from(Account)).scalar())
        h.check("sum of balances over every shard", 15 * len(TENANTS) - 2,
                c.execute(select(func.sum(Account.balance))).scalar())


def tenant_less_group_by():
    with autocommit_engine.connect() as c:
        rows = c.execute(select(Account.tenant_id, func.count()).group_by(Account.tenant_id)
                         .order_by(Account.tenant_id)).all()
        h.check("GROUP BY tenant over every shard, ordered", sorted(TENANTS), [r[0] for r in rows])


h.run("setup", setup)
h.run("orm_crud", orm_crud)
h.run("selectinload_composite_key", selectinload_composite_key)
h.run("several_tenants_in_one_session", several_tenants_in_one_session)
h.run("rollback", rollback)
h.run("savepoints", savepoints)
h.run("isolation_level", isolation_level)
h.run("tenant_less_aggregates", tenant_less_aggregates)
h.run("tenant_less_group_by", tenant_less_group_by)
h.run("create_all_in_transaction", create_all_in_transaction)
h.finish()
