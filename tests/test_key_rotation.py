"""`flask keys rotate` re-encrypts complaints as well as site secrets."""
from __future__ import annotations

from cryptography.fernet import Fernet

from portal import create_app
from portal.complaints import store
from portal.crypto import get_crypto
from portal.sites import import_sites, parse_csv
from portal.tracking import normalize
from tests.conftest import SITES_CSV, Resident, make_config, tracking_number


def test_keys_rotate_covers_complaints(redis, redis_server, tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = create_app(make_config(redis_server.url, tmp_path / "a", DATA_KEYS=old))
    import_sites(redis, parse_csv(SITES_CSV))
    resident = Resident(first.test_client())
    resident.arrive()
    number = normalize(tracking_number(resident.submit(name="Made", contact="081234567890").get_data(as_text=True)))

    both = create_app(make_config(redis_server.url, tmp_path / "b", DATA_KEYS=f"{new},{old}"))
    result = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "complaints: 2" in result.output

    record = store.read(redis, "51", number)
    only_new = create_app(make_config(redis_server.url, tmp_path / "c", DATA_KEYS=new))
    with only_new.app_context():
        assert get_crypto().unseal(record["sealed_contact"]) == {"name": "Made", "contact": "081234567890"}
        assert "Puskesmas" in get_crypto().unseal(record["sealed_text"])["body"]
