module example.com/app

go 1.21

replace example.com/x => ${UP}
