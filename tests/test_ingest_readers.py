"""Each raw-format reader on tiny files in its real on-disk format, and malformed input."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from params_base import section

from pipeline.ingest.formats import FORMATS
from pipeline.ingest.lines import IngestError, LineIssues
from pipeline.ingest.records import TextLimit


def read_all(fmt: str, inter: Path, items: Path, policy: str = "error", with_review: bool = False):
    spec = FORMATS[fmt]
    issues = LineIssues(policy)
    rows = list(spec.read_interactions(inter, issues, with_review))
    metas = list(spec.read_items(items, issues, TextLimit(100, 1000)))
    return rows, metas, issues


def test_recbole_atomic_files(tmp_path):
    (tmp_path / "d.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t42\t4\t881250949\n8\t43\t2.5\t881250950.0\n"
    )
    (tmp_path / "d.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "42\tToy Story\t1995\tAnimation Children's Comedy\n43\tHeat\t1995\tAction\n"
    )
    rows, metas, _ = read_all("recbole", tmp_path / "d.inter", tmp_path / "d.item")
    assert [(r.line, r.user, r.item, r.rating, r.timestamp) for r in rows] == [
        (2, "7", "42", 4.0, 881250949), (3, "8", "43", 2.5, 881250950)
    ]
    assert metas[0].title == "Toy Story" and metas[0].categories == ["Animation", "Children's", "Comedy"]
    assert metas[0].extra == "1995" and metas[1].line == 3


def test_ml100k_original_files_latin1(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t5\t891717742\n")
    flags = ["0"] * 19
    flags[1] = flags[16] = "1"  # Action, Thriller
    line = "|".join(["242", "Café Noir (1995)", "01-Jan-1995", "", "http://x"] + flags)
    (tmp_path / "u.item").write_bytes((line + "\n").encode("latin-1"))
    rows, metas, _ = read_all("ml100k", tmp_path / "u.data", tmp_path / "u.item")
    assert [(r.user, r.item, r.rating) for r in rows] == [("196", "242", 3.0), ("186", "302", 5.0)]
    assert metas[0].title == "Café Noir (1995)" and metas[0].categories == ["Action", "Thriller"]
    assert metas[0].extra == "01-Jan-1995"


def test_ml1m_double_colon_latin1(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n2::661::3::978302109\n")
    (tmp_path / "movies.dat").write_bytes("1193::Amélie (2001)::Comedy|Romance\n".encode("latin-1"))
    rows, metas, _ = read_all("ml1m", tmp_path / "ratings.dat", tmp_path / "movies.dat")
    assert [(r.user, r.item, r.rating, r.timestamp) for r in rows][0] == ("1", "1193", 5.0, 978300760)
    assert metas == [(1, "1193", "Amélie (2001)", ["Comedy", "Romance"], "", "2001")]


def write_gz_lines(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def test_amazon_2018_gz_reviews_and_meta(tmp_path):
    reviews = write_gz_lines(tmp_path / "Books.json.gz", [
        json.dumps({"reviewerID": "A1", "asin": "B01", "overall": 5.0, "unixReviewTime": 1500000000,
                    "reviewText": "Great   read", "verified": True}),
        json.dumps({"reviewerID": "A2", "asin": "B01", "overall": 3.0, "unixReviewTime": 1500000100}),
    ])
    meta = write_gz_lines(tmp_path / "meta_Books.json.gz", [
        json.dumps({"asin": "B01", "title": "A Book", "category": ["Books", "Fiction", "Books"],
                    "description": ["First part.", "Second part."], "brand": "Penguin"}),
    ])
    rows, metas, _ = read_all("amazon", reviews, meta, with_review=True)
    assert [(r.user, r.item, r.rating, r.review) for r in rows] == [
        ("A1", "B01", 5.0, "Great   read"), ("A2", "B01", 3.0, "")
    ]
    assert metas[0].categories == ["Books", "Fiction"]
    assert metas[0].description == "First part. Second part." and metas[0].extra == "Penguin"


def test_amazon_2014_meta_python_literals(tmp_path):
    meta = tmp_path / "meta_Beauty.json"
    meta.write_text(
        "{'asin': '0205616461', 'title': 'Bath & Body', 'categories': [['Beauty', 'Bath & Body'], "
        "['Beauty', 'Skin Care']], 'description': \"It's soap\", 'salesRank': {'Beauty': 10}}\n"
    )
    metas = list(FORMATS["amazon"].read_items(meta, LineIssues(), TextLimit(100, 1000)))
    assert metas[0].item == "0205616461"
    assert metas[0].categories == ["Beauty", "Bath & Body", "Skin Care"]
    assert metas[0].description == "It's soap"


def test_yelp_review_and_business(tmp_path):
    review = tmp_path / "review.json"
    review.write_text(json.dumps({"review_id": "r", "user_id": "U", "business_id": "B", "stars": 4,
                                  "date": "2018-07-07 22:09:11", "text": "Tasty"}) + "\n")
    business = tmp_path / "business.json"
    business.write_text(json.dumps({"business_id": "B", "name": "Joe's", "categories": "Pizza, Restaurants",
                                    "address": "1 Main St", "city": "Tempe", "state": "AZ"}) + "\n")
    rows, metas, _ = read_all("yelp", review, business, with_review=True)
    assert rows[0].timestamp == 1531001351 and rows[0].review == "Tasty"  # 2018-07-07T22:09:11Z
    assert metas[0].categories == ["Pizza", "Restaurants"] and metas[0].extra == "1 Main St, Tempe, AZ"


@pytest.mark.parametrize(
    "fmt, name, content, message, good_rows",
    [
        ("ml1m", "ratings.dat", "1::2::5::978300760\n1::3::5\n", "ratings.dat:2: bad_field_count", 1),
        ("ml100k", "u.data", "1\t2\t5\t978300760\n1\t3\tfive\t978300760\n", "u.data:2: bad_number: field 'rating'", 1),
        ("yelp", "review.json", '{"user_id": "U", "business_id": "B", "stars": 4, "date": "2018-07-07"}\n{"user_id": ',
         "review.json:2: bad_json", 1),
        ("amazon", "Books.json", '{"reviewerID": "A", "asin": "B", "unixReviewTime": 1}\n', "Books.json:1: missing_field: 'overall'", 0),
    ],
)
def test_malformed_line_errors_name_file_and_line(tmp_path, fmt, name, content, message, good_rows):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(IngestError, match=message.replace("(", r"\(")):
        list(FORMATS[fmt].read_interactions(path, LineIssues("error"), False))
    skipped = LineIssues("skip")
    kept = list(FORMATS[fmt].read_interactions(path, skipped, False))
    assert skipped.total() == 1 and len(kept) == good_rows


def test_malformed_gzip_line_and_recbole_missing_column(tmp_path):
    path = write_gz_lines(tmp_path / "Books.json.gz", ['{"reviewerID": "A"', "not json"])
    with pytest.raises(IngestError, match=r"Books.json.gz:1: bad_json"):
        list(FORMATS["amazon"].read_interactions(path, LineIssues(), False))
    inter = tmp_path / "x.inter"
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    with pytest.raises(IngestError, match=r"x.inter:1: header lacks column\(s\) \['rating'\]"):
        list(FORMATS["recbole"].read_interactions(inter, LineIssues(), False))


def test_amazon_end_to_end_time_range_filter_and_reviews(tmp_path):
    from pipeline.ingest.build import run_ingest
    from pipeline.ingest.config import IngestParams

    jan_2017, day = 1483228800, 86400
    reviews = [
        {"reviewerID": f"U{u}", "asin": f"B{i}", "overall": float(1 + (u + i) % 5),
         "unixReviewTime": jan_2017 + (u * 61 + i * 17) % 360 * day, "reviewText": f"review {u}-{i}"}
        for u in range(6) for i in range(5)
    ]
    reviews.append({"reviewerID": "U0", "asin": "B0", "overall": 5.0, "unixReviewTime": jan_2017 - day,
                    "reviewText": "2016: outside the time range"})
    write_gz_lines(tmp_path / "Toys.json.gz", [json.dumps(r) for r in reviews])
    write_gz_lines(tmp_path / "meta_Toys.json.gz", [json.dumps({"asin": f"B{i}", "title": f"Toy {i}"}) for i in range(6)])
    params = IngestParams.model_validate(section("ingest", **{
        "source": {"format": "amazon", "path": str(tmp_path), "name": "Toys"}, "label_threshold": 4,
        "keep_reviews": True, "on_unknown_item": "skip", "time_range": {"start": "2017-01-01", "end": "2018-01-01"},
        "split": {"mode": "last_months_halved", "train_months": 8}, "topn_negatives": 1,
    }))
    out = run_ingest(params)
    frame = out.interactions.to_pandas()
    assert len(frame) == 30 and out.card["filters"]["time_range"]["rows_outside"] == 1
    assert out.card["read"]["unknown_items_skipped"] == {"unknown_item": 1}  # B5 has metadata, no reviews
    users = out.users.to_pandas().set_index("user").raw_id
    items = out.items.to_pandas().set_index("item").raw_id
    expected = "review " + users[frame.user].str[1:].values + "-" + items[frame.item].str[1:].values
    assert (frame.review.values == expected).all()  # second pass matched each row's own text
    assert ((frame.rating >= 4) == (frame.label == 1)).all()
