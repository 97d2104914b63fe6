from minimind.inspect.command import main

if __name__ == "__main__":
    main()
