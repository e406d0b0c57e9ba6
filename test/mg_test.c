int mg_test_dummy;
