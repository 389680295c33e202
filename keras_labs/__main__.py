from keras_labs.cli import main

raise SystemExit(main())
