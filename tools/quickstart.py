"""The vector quickstart: SQLAlchemy + PyMySQL + tidb-vector, as an application
writes it. Stores three documents and prints them by cosine distance to
[1, 2, 3]. Connects to --host/--port (TiDB directly, or vecgate) over TLS
verified against --ca."""
import argparse
import json
import time
from pathlib import Path

from sqlalchemy import Column, Integer, Text, create_engine, text
from sqlalchemy.orm import Session, declarative_base
from tidb_vector.sqlalchemy import VectorType

Base = declarative_base()


class Document(Base):
    __tablename__ = "documents"
    id = Column(Integer, primary_key=True)
    content = Column(Text)
    embedding = Column(VectorType(3))


def main():
    conn_file = Path(__file__).resolve().parents[1] / "build" / "tidb" / "conn.json"
    info = json.loads(conn_file.read_text()) if conn_file.exists() else {}
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default=info.get("host", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=info.get("port", 4000))
    ap.add_argument("--user", default=info.get("user", "root"))
    ap.add_argument("--password", default=info.get("password", ""))
    ap.add_argument("--ca", default=info.get("ca"))
    ap.add_argument("--database", default="vecgate_quickstart")
    ap.add_argument("--flavor", default=info.get("flavor", "tidb"),
                    help="tidb, or mariadb for the fallback test database")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the search this many times (0.3 s apart) and check the "
                         "answers agree, as an application serving requests would")
    args = ap.parse_args()

    ssl = {"ssl_ca": args.ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    root = create_engine(f"mysql+pymysql://{args.user}:{args.password}@{args.host}:{args.port}/",
                         connect_args=ssl)
    with root.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {args.database}"))
        c.execute(text(f"CREATE DATABASE {args.database}"))
    root.dispose()

    engine = create_engine(
        f"mysql+pymysql://{args.user}:{args.password}@{args.host}:{args.port}/{args.database}",
        connect_args=ssl)
    if args.flavor == "tidb":
        Base.metadata.create_all(engine)
    else:
        # MariaDB has no VECTOR type; the vector text lives in a LONGTEXT column.
        with engine.begin() as c:
            c.execute(text("CREATE TABLE documents (id INT PRIMARY KEY AUTO_INCREMENT, "
                           "content TEXT, embedding LONGTEXT)"))

    with Session(engine) as session:
        session.add_all([
            Document(content="dog", embedding=[1, 2, 1]),
            Document(content="fish", embedding=[1, 2, 4]),
            Document(content="tree", embedding=[1, 0, 0]),
        ])
        session.commit()

    answers = []
    for i in range(args.repeat):
        if i:
            time.sleep(0.3)
        with Session(engine) as session:
            distance = Document.embedding.cosine_distance([1, 2, 3]).label("distance")
            results = session.query(Document, distance).order_by(distance).limit(3).all()
            answers.append([(doc.content, list(map(float, doc.embedding)), d)
                            for doc, d in results])
    print("Documents nearest to [1, 2, 3] by cosine distance:")
    for content, embedding, d in answers[0]:
        print(f"  {content:<5} {embedding}  distance: {d}")
    if args.repeat > 1:
        same = all(a == answers[0] for a in answers)
        print(f"Searched {args.repeat} times: {'identical answers' if same else 'ANSWERS DIFFER'}")
        if not same:
            raise SystemExit(1)
    engine.dispose()


if __name__ == "__main__":
    main()
