"""adam.derive.tte: time-to-event parameters (OS, time to first AE, ...)."""
import pandas as pd
import pytest

from cdisc.adam.derive import DERIVATIONS, CensorSource, EventSource, derive_param_tte
from cdisc.errors import DataError, SpecError


def dates(*values):
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[s]").to_numpy()


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


def ts(text):
    return pd.Timestamp(text)


DEATH = EventSource(dataset_name="adsl", filter="DTHFL == 'Y'", date="DTHDT",
                    set_values_to={"EVNTDESC": "DEATH", "SRCDOM": "ADSL", "SRCVAR": "DTHDT"})
ALIVE = CensorSource(dataset_name="adsl", date="LSTALVDT",
                     set_values_to={"EVNTDESC": "LAST KNOWN ALIVE",
                                    "CNSDTDSC": "LAST KNOWN ALIVE DATE", "SRCDOM": "ADSL",
                                    "SRCVAR": "LSTALVDT"})
OS = {"PARAMCD": "OS", "PARAM": "Overall Survival (days)"}


@pytest.fixture
def adsl():
    # first infusion 2021-01-01 for everyone
    return pd.DataFrame({
        "STUDYID": ["S"] * 5,
        "USUBJID": ["1", "2", "3", "4", "5"],
        "TRTSDT": dates(*["2021-01-01"] * 5),
        "TRTSDTF": [None, None, None, "D", None],
        "DTHFL": ["Y", None, "Y", "Y", None],
        "DTHDT": dates("2021-03-01", None, "2021-02-01", "2021-04-10", None),
        "DTHDTF": [None, None, None, "D", None],
        "LSTALVDT": dates("2021-03-01", "2021-06-30", "2021-01-31", "2021-04-10",
                          "2021-02-15"),
    })


def test_overall_survival(adsl):
    out = derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                           event_conditions=[DEATH], censor_conditions=[ALIVE],
                           set_values_to=OS)
    assert col(out, "USUBJID") == ["1", "2", "3", "4", "5"]
    assert col(out, "ADT") == [ts("2021-03-01"), ts("2021-06-30"), ts("2021-02-01"),
                               ts("2021-04-10"), ts("2021-02-15")]
    # 1: death on 03-01 = last alive (tie) -> event; 31 (Jan) + 28 (Feb) = 59 days + 1 = 60
    # 2: censored 06-30: 31+28+31+30+31+29 = 180 days + 1 = 181
    # 3: death 02-01 after last alive 01-31 -> event, 31 + 1 = 32
    # 4: death and last alive the same day -> event, 31+28+31+9 = 99 + 1 = 100
    # 5: alive until 02-15: 45 + 1 = 46
    assert col(out, "AVAL") == [60.0, 181.0, 32.0, 100.0, 46.0]
    assert col(out, "CNSR") == [0, 1, 0, 0, 1]
    assert col(out, "EVNTDESC") == ["DEATH", "LAST KNOWN ALIVE", "DEATH", "DEATH",
                                    "LAST KNOWN ALIVE"]
    assert col(out, "CNSDTDSC") == [None, "LAST KNOWN ALIVE DATE", None, None,
                                    "LAST KNOWN ALIVE DATE"]
    assert col(out, "SRCVAR") == ["DTHDT", "LSTALVDT", "DTHDT", "DTHDT", "LSTALVDT"]
    # imputation flags of the origin and of the event date travel along (ADaMIG)
    assert col(out, "STARTDTF") == [None, None, None, "D", None]
    assert col(out, "ADTF") == [None, None, None, "D", None]
    assert list(out.columns[:9]) == ["STUDYID", "USUBJID", "PARAMCD", "PARAM", "STARTDT",
                                     "STARTDTF", "ADT", "ADTF", "AVAL"]
    assert set(["CNSR", "SRCDOM", "SRCSEQ"]) <= set(out.columns)
    assert col(out, "PARAMCD") == ["OS"] * 5


def test_first_event_of_several_sources_and_srcseq(adsl):
    ae = pd.DataFrame({
        "STUDYID": ["S"] * 5, "USUBJID": ["1", "1", "2", "2", "9"],
        "AEDECOD": ["CRS", "CRS", "ICANS", "CRS", "CRS"],
        "AESEQ": [2, 1, 1, 2, 1],
        "ASTDT": dates("2021-01-05", "2021-01-03", "2021-01-04", "2021-01-04", "2021-01-02"),
    })
    crs = EventSource(dataset_name="ae", filter="AEDECOD == 'CRS'", date="ASTDT",
                      set_values_to={"EVNTDESC": "CRS", "SRCDOM": "ADAE", "SRCVAR": "ASTDT"},
                      copy_vars={"SRCSEQ": "AESEQ"})
    icans = {"dataset_name": "ae", "filter": "AEDECOD == 'ICANS'", "date": "ASTDT",
             "set_values_to": {"EVNTDESC": "ICANS"}, "copy_vars": {"SRCSEQ": "AESEQ"}}
    out = derive_param_tte(adsl, source_datasets={"adsl": adsl, "ae": ae},
                           start_date="TRTSDT", event_conditions=[crs, icans],
                           censor_conditions=[ALIVE],
                           set_values_to={"PARAMCD": "TTCRS", "PARAM": "Time to CRS/ICANS"})
    # 1: CRS on 01-03 (AESEQ 1) before 01-05 -> AVAL 2 + 1 = 3
    # 2: CRS and ICANS both on 01-04: the source listed first (CRS, AESEQ 2) wins
    # 9 is not in ADSL -> ignored; 3-5 censored at last known alive
    assert col(out, "EVNTDESC")[:2] == ["CRS", "CRS"]
    assert col(out, "SRCSEQ") == [1.0, 2.0, None, None, None]
    assert col(out, "AVAL")[:2] == [3.0, 4.0]
    assert col(out, "CNSR") == [0, 0, 1, 1, 1]
    assert col(out, "USUBJID") == ["1", "2", "3", "4", "5"]


def test_censor_only_latest_censor_and_censor_ties(adsl):
    alive = adsl.assign(DTHFL=None)
    new_therapy = CensorSource(dataset_name="adsl", date="NTHDT", censor=2,
                               set_values_to={"CNSDTDSC": "NEW ANTICANCER THERAPY"})
    alive = alive.assign(NTHDT=dates("2021-05-01", "2021-06-30", None, None, "2021-02-01"))
    out = derive_param_tte(alive, source_datasets={"adsl": alive}, start_date="TRTSDT",
                           event_conditions=[DEATH], censor_conditions=[ALIVE, new_therapy],
                           set_values_to=OS)
    # latest censoring date wins: 1 -> new therapy 05-01 (after 03-01, CNSR 2);
    # 2 -> both 06-30: the source listed last wins (CNSR 2); 5 -> last alive 02-15
    assert col(out, "CNSR") == [2, 2, 1, 1, 1]
    assert col(out, "ADT")[:2] == [ts("2021-05-01"), ts("2021-06-30")]
    assert col(out, "CNSDTDSC")[:3] == ["NEW ANTICANCER THERAPY", "NEW ANTICANCER THERAPY",
                                        "LAST KNOWN ALIVE DATE"]


def test_subject_without_event_or_censoring_is_an_error(adsl):
    adsl = adsl.assign(LSTALVDT=dates("2021-03-01", None, "2021-01-31", "2021-04-10", None))
    with pytest.raises(DataError) as err:
        derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                         event_conditions=[DEATH], censor_conditions=[ALIVE],
                         set_values_to=OS)
    text = str(err.value)
    assert "2 subject(s)" in text and "USUBJID=2" in text and "USUBJID=5" in text
    assert "USUBJID=1" not in text
    # subjects filtered out of ADSL get no record and no error
    out = derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                           event_conditions=[DEATH], censor_conditions=[ALIVE],
                           set_values_to=OS, filter_adsl="present(LSTALVDT)")
    assert col(out, "USUBJID") == ["1", "3", "4"]


def test_dates_before_start(adsl):
    early = adsl.assign(LSTALVDT=dates("2021-03-01", "2020-12-20", "2021-01-31",
                                       "2021-04-10", "2021-02-15"))
    out = derive_param_tte(early, source_datasets={"adsl": early}, start_date="TRTSDT",
                           event_conditions=[DEATH], censor_conditions=[ALIVE],
                           set_values_to=OS)
    # admiral: ADT = max(ADT, STARTDT) -> 2021-01-01, AVAL 1
    assert col(out, "ADT")[1] == ts("2021-01-01") and col(out, "AVAL")[1] == 1.0
    with pytest.raises(DataError, match="USUBJID=2"):
        derive_param_tte(early, source_datasets={"adsl": early}, start_date="TRTSDT",
                         event_conditions=[DEATH], censor_conditions=[ALIVE],
                         set_values_to=OS, before_start="error")


def test_missing_start_append_and_spec_errors(adsl):
    out = derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                           event_conditions=[DEATH], censor_conditions=[ALIVE],
                           set_values_to=OS)
    both = derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                            event_conditions=[DEATH], censor_conditions=[ALIVE],
                            set_values_to={"PARAMCD": "OS2", "PARAM": "x"}, dataset=out)
    assert len(both) == 10 and col(both, "PARAMCD")[5:] == ["OS2"] * 5
    with pytest.raises(DataError, match="already exists"):
        derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                         event_conditions=[DEATH], censor_conditions=[ALIVE],
                         set_values_to=OS, dataset=out)
    untreated = adsl.assign(TRTSDT=dates(None, "2021-01-01", "2021-01-01", "2021-01-01",
                                         "2021-01-01"))
    with pytest.raises(DataError, match="no TRTSDT"):
        derive_param_tte(untreated, source_datasets={"adsl": untreated}, start_date="TRTSDT",
                         event_conditions=[DEATH], censor_conditions=[ALIVE],
                         set_values_to=OS)
    with pytest.raises(SpecError, match="rs"):
        derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                         event_conditions=[{"dataset_name": "rs", "date": "ADT"}],
                         censor_conditions=[ALIVE], set_values_to=OS)
    with pytest.raises(SpecError) as err:
        derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                         event_conditions=[{"dataset_name": "adsl", "date": "DTHDT",
                                            "censor": 1}],
                         censor_conditions=[ALIVE], set_values_to=OS)
    assert "event_conditions[0].censor" in str(err.value)
    with pytest.raises(SpecError, match="PARAM"):
        derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                         event_conditions=[DEATH], censor_conditions=[ALIVE],
                         set_values_to={"PARAMCD": "OS"})


def test_registered():
    assert DERIVATIONS["derive_param_tte"] is derive_param_tte
